"""Grounding settings (``LLMOPS_GROUNDING_*``; the knowledge store's are ``LLMOPS_QDRANT_*``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.knowledge.settings import KnowledgeSettings
from shared.runtime.settings import StageSettings
from shared.tenants import TenantSource
from shared.tenants.checks import check_templates

__all__ = ["GroundingSettings"]


class GroundingSettings(StageSettings):
    """Settings of the grounding service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_GROUNDING_", env_file=".env", extra="ignore")

    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    memory_turns: int = Field(default=4, ge=0, description="Most recent turns of the conversation recalled.")
    memory_relevant_turns: int = Field(default=2, ge=0, description="Older turns recalled by relevance.")
    memory_max_turns: int = Field(default=50, ge=1, description="Turns kept per conversation.")
    memory_conversations: int = Field(default=10_000, ge=1, description="Conversations kept in memory (LRU).")
    memory_tokens: int = Field(default=400, ge=0, description="Token budget of recalled memory.")
    memory_min_relevance: float = Field(default=0.3, ge=-1, le=1, description="Cosine an older turn needs.")
    context_tokens: int = Field(default=1200, ge=0, description="Token budget of retrieved context.")
    retrieval_k: int = Field(default=5, ge=0, description="Chunks put in the prompt; 0 turns retrieval off.")
    retrieval_candidates: int = Field(default=50, ge=1, description="Nearest chunks reranked and chosen from.")
    retrieval_threshold: float = Field(default=0.25, ge=-1, le=1, description="Least cosine similarity.")
    mmr_lambda: float = Field(default=0.7, ge=0, le=1, description="MMR: 1 is pure relevance, 0 pure diversity.")
    keyword_weight: float = Field(default=0.1, ge=0, description="Score added for sharing all question keywords.")
    entity_boost: float = Field(default=0.05, ge=0, description="Score added per prompt entity a chunk names.")
    entities: bool = Field(default=True, description="Extract named entities from the prompt (spaCy).")
    templates_dir: Path | None = Field(default=None, description="Template folder; the packaged one when absent.")
    default_template: str = "default"
    tenant_templates: dict[str, str] = Field(
        default_factory=dict,
        description=(
            'Deprecated (LLMOPS_TENANTS_FILE: grounding.template): template per tenant, JSON: {"acme": "concise@1"}.'
        ),
    )

    def templates_by_tenant(self, exists: Callable[[str], object]) -> dict[str, str]:
        """Each tenant's pinned template, from the tenant configuration (``LLMOPS_GROUNDING_TENANT_TEMPLATES`` merged).

        ``exists(ref)`` raises ``KeyError`` for an unknown template (``TemplateStore.get``): one stops the
        service at start, naming the tenant.

        Example:
            >>> core = CoreSettings(tenants={"tenants": {"acme": {"grounding": {"template": "concise@1"}}}})
            >>> GroundingSettings(core=core).templates_by_tenant(TemplateStore.load().get)
            {'acme': 'concise@1'}

        """
        config = self.core.tenant_config(self.tenant_templates_source())
        check_templates(config, exists)
        return config.templates()

    def tenant_templates_source(self) -> TenantSource:
        """``LLMOPS_GROUNDING_TENANT_TEMPLATES`` (deprecated) in the unified shape, to be merged."""
        return TenantSource(
            "LLMOPS_GROUNDING_TENANT_TEMPLATES",
            {"tenants": {tenant: {"grounding": {"template": ref}} for tenant, ref in self.tenant_templates.items()}},
        )
