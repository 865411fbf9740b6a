"""Preprocess settings (``LLMOPS_PREPROCESS_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.preprocess.language import DEFAULT_CANDIDATES
from shared.runtime.settings import StageSettings

__all__ = ["PreprocessSettings"]


class PreprocessSettings(StageSettings):
    """Settings of the preprocess service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_PREPROCESS_", env_file=".env", extra="ignore")

    max_prompt_chars: int = Field(default=200_000, ge=1, description="Longer prompts are refused before tokenizing.")
    typo_correction: bool = Field(default=True, description="Correct typos unless a tenant or request turns it off.")
    typo_min_length: int = Field(default=4, ge=1, description="Shorter words are never corrected.")
    typo_min_ratio: float = Field(
        default=10.0, ge=1.0, description="The best suggestion must be this many times more frequent than the next."
    )
    tenants_path: Path | None = Field(
        default=None,
        description=(
            "Deprecated (LLMOPS_TENANTS_FILE, docs/tenants.md): YAML of per-tenant switches, merged into the tenant "
            "configuration, e.g. {tenants: {acme: {typo_correction: false}}}."
        ),
    )
    tenant_from_topic: bool = Field(
        default=False,
        description=(
            "Security on: the shared requests topic carries only the default tenant; a tenant is named by writing "
            "to its own topic (LLMOPS_TOPIC_REQUEST_TENANTS). Off (dev): the body's tenant is taken there."
        ),
    )
    language_min_confidence: float = Field(default=0.5, ge=0.0, le=1.0, description="Below it: language 'und'.")
    language_candidates: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CANDIDATES),
        description="ISO 639-1 codes the detector chooses among (JSON list); empty for all 97 it knows.",
    )
    embed: bool = Field(default=True, description="Embed the cleaned prompt (all-MiniLM-L6-v2) for grounding.")
    embed_threads: int | None = Field(
        default=1,
        ge=1,
        description="torch threads for the embedder; one is steadier beside other busy processes (unset: all cores).",
    )
    batch_max_records: int = Field(default=32, ge=1, description="Most requests handled (and embedded) together.")
    batch_timeout_ms: int = Field(
        default=100, ge=1, description="Longest one poll waits for a first record; it returns as soon as one arrives."
    )
