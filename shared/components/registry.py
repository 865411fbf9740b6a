"""The model registry: GGUF models described in ``models.yaml`` (a file, not code)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ModelEntry", "ModelRegistry", "ModelSource", "SourcePart", "UnknownModelError"]


class UnknownModelError(KeyError):
    """The registry has no model of that name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown model {self.name!r}; the registry has {', '.join(self.known)}"


class SourcePart(BaseModel):
    """One wheel member holding a piece of the GGUF file."""

    model_config = ConfigDict(extra="forbid")

    package: str
    version: str
    member: str


class ModelSource(BaseModel):
    """Where the GGUF file comes from."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pypi-parts"]
    parts: list[SourcePart] = Field(min_length=1)


class ModelEntry(BaseModel):
    """One servable model."""

    model_config = ConfigDict(extra="forbid")

    name: str
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = None
    chat_format: Literal["gguf", "plain"]
    n_ctx: int = Field(default=2048, ge=256)
    description: str = ""
    source: ModelSource

    def path_in(self, models_dir: Path) -> Path:
        """Where the assembled file lives in a models folder."""
        return models_dir / self.file


class ModelRegistry(BaseModel):
    """All models, and the default.

    Example:
        >>> registry = ModelRegistry.load()
        >>> registry.get(None).name
        'qwen2.5-coder-0.5b-instruct'

    """

    model_config = ConfigDict(extra="forbid")

    default: str
    models: dict[str, ModelEntry]

    @classmethod
    def load(cls, path: Path | None = None, *, default: str | None = None) -> ModelRegistry:
        """Read the registry file (the packaged ``models.yaml`` unless ``path`` is given).

        ``default`` overrides the file's default model (``LLMOPS_DEFAULT_MODEL``).
        """
        text = path.read_text() if path else files("shared.components").joinpath("models.yaml").read_text()
        data = yaml.safe_load(text)
        for name, entry in data.get("models", {}).items():
            entry.setdefault("name", name)
        if default:
            data["default"] = default
        registry = cls.model_validate(data)
        registry.get(registry.default)
        return registry

    def get(self, name: str | None) -> ModelEntry:
        """The named model, or the default for ``None``."""
        key = name or self.default
        try:
            return self.models[key]
        except KeyError:
            raise UnknownModelError(key, sorted(self.models)) from None

    def names(self) -> list[str]:
        """All model names."""
        return sorted(self.models)
