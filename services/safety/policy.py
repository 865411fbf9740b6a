"""The safety policy: which action each check's finding triggers."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Action", "SafetyPolicy"]

Action = Literal["redact", "block", "warn"]


class SafetyPolicy(BaseModel):
    """Actions per check, with a default for checks the policy does not name.

    Example:
        >>> SafetyPolicy(actions={"pii.email": "redact"}).action_for("pii.email")
        'redact'

    """

    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1)
    actions: dict[str, Action] = Field(default_factory=dict)
    default_action: Action = "redact"
    refusal: str = "I can't help with this request because it contains {category}."

    @classmethod
    def load(cls, path: Path | None = None) -> SafetyPolicy:
        """Read the policy (the packaged ``policy.yaml`` unless ``path`` is given)."""
        text = path.read_text() if path else files("services.safety").joinpath("policy.yaml").read_text()
        return cls.model_validate(yaml.safe_load(text))

    def action_for(self, check: str) -> Action:
        """The action for a finding of ``check``."""
        return self.actions.get(check, self.default_action)

    def refusal_text(self, category: str) -> str:
        """The refusal shown to the user for a blocked request."""
        return self.refusal.format(category=category.replace("pii.", "").replace("_", " "))
