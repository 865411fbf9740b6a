"""Versioned prompt templates, one YAML file per version (``<id>.v<version>.yaml``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PromptTemplate", "TemplateStore", "UnknownTemplateError"]


class UnknownTemplateError(KeyError):
    """No template of that id (and version)."""

    def __str__(self) -> str:
        return f"unknown prompt template {self.args[0]!r}"


class PromptTemplate(BaseModel):
    """A system prompt, identified by id and version."""

    model_config = ConfigDict(extra="forbid")

    id: str
    version: int = Field(ge=1)
    system: str


class TemplateStore:
    """All templates of a folder; ``get("default")`` is the latest version, ``get("default@1")`` a fixed one.

    Example:
        >>> store = TemplateStore.load()
        >>> store.get("default").version
        1

    """

    def __init__(self, templates: list[PromptTemplate]) -> None:
        self._by_key = {(t.id, t.version): t for t in templates}

    @classmethod
    def load(cls, folder: Path | None = None) -> TemplateStore:
        """Read every ``*.yaml`` in ``folder`` (the packaged templates when absent)."""
        root = folder or Path(str(files("services.grounding").joinpath("templates")))
        templates = [PromptTemplate.model_validate(yaml.safe_load(p.read_text())) for p in sorted(root.glob("*.yaml"))]
        return cls(templates)

    def get(self, ref: str) -> PromptTemplate:
        """Look up ``id`` (latest version) or ``id@version``."""
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
