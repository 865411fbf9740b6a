"""Versioned prompt templates: Jinja2 files named ``<name>.v<version>.jinja`` in a folder.

A template renders the system message. It is given ``documents`` (the retrieved chunks, to be
numbered ``[1]``, ``[2]``... in order), ``memory`` (earlier turns), ``entities``, ``question`` and
``client_system`` (the client's own system message, if any).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["PromptTemplate", "TemplateStore", "UnknownTemplateError"]

_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\.v(?P<version>[0-9]+)\.jinja$")


class UnknownTemplateError(KeyError):
    """No template of that name (and version)."""

    def __str__(self) -> str:
        return f"unknown prompt template {self.args[0]!r}"


@dataclass(frozen=True)
class PromptTemplate:
    """A compiled system-prompt template, identified by name and version."""

    id: str
    version: int
    template: Template

    def render(self, **context: Any) -> str:
        """The system message for this context."""
        return self.template.render(**context).strip()


class TemplateStore:
    """All templates of a folder; ``get("default")`` is the latest version, ``get("default@1")`` a fixed one.

    Example:
        >>> store = TemplateStore.load()
        >>> store.get("default").render(documents=[], client_system="")
        'You are a helpful, accurate assistant. ...'

    """

    def __init__(self, templates: list[PromptTemplate]) -> None:
        self._by_key = {(t.id, t.version): t for t in templates}

    @classmethod
    def load(cls, folder: Path | None = None) -> TemplateStore:
        """Compile every ``<name>.v<N>.jinja`` in ``folder`` (the packaged templates when absent)."""
        root = folder or Path(str(files("services.grounding").joinpath("templates")))
        # Sandboxed: a template can only format what it is given. Prompts are plain text, not HTML.
        env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False)
        templates = []
        for path in sorted(root.glob("*.jinja")):
            match = _FILE_NAME.match(path.name)
            if match is None:
                msg = f"template file {path.name!r} is not named <name>.v<version>.jinja"
                raise ValueError(msg)
            try:
                compiled = env.from_string(path.read_text())
            except TemplateError as exc:
                msg = f"template {path.name}: {exc}"
                raise ValueError(msg) from exc
            templates.append(PromptTemplate(match["name"], int(match["version"]), compiled))
        return cls(templates)

    def names(self) -> list[str]:
        """Every ``name@version``."""
        return [f"{name}@{version}" for name, version in sorted(self._by_key)]

    def get(self, ref: str) -> PromptTemplate:
        """Look up ``name`` (latest version) or ``name@version``."""
        name, _, version = ref.partition("@")
        if version:
            try:
                return self._by_key[(name, int(version))]
            except (KeyError, ValueError):
                raise UnknownTemplateError(ref) from None
        versions = [v for (i, v) in self._by_key if i == name]
        if not versions:
            raise UnknownTemplateError(ref)
        return self._by_key[(name, max(versions))]
