"""The safety policy file: the packaged ``shared/guards/policy.yaml`` or ``LLMOPS_SAFETY_POLICY_PATH``."""

from __future__ import annotations

from pathlib import Path

from shared.guards.policy import Action, PolicySet

__all__ = ["Action", "SafetyPolicy"]


class SafetyPolicy(PolicySet):
    """Every tenant's guard policy, read once at start.

    Example:
        >>> policy = SafetyPolicy.load()
        >>> policy.for_tenant("clinic").action_for("pii.person")
        'redact'

    """

    @classmethod
    def load(cls, path: Path | None = None) -> SafetyPolicy:
        """Read and validate the policy (the packaged ``policy.yaml`` unless ``path`` is given)."""
        return cls.model_validate(PolicySet.load(path).model_dump())

    def action_for(self, finding: str, tenant: str = "default") -> Action:
        """The action for a finding (``pii.email``) under a tenant's policy."""
        return self.for_tenant(tenant).action_for(finding)

    def refusal_text(self, category: str, tenant: str = "default") -> str:
        """The refusal shown to the user for a blocked request."""
        return self.for_tenant(tenant).refusal_text(category)
