"""The output policy: which action each output finding triggers, and what a redaction leaves."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Action", "OutputPolicy"]

Action = Literal["redact", "block", "warn"]


class OutputPolicy(BaseModel):
    """Actions per output check, as the safety policy has for input.

    Example:
        >>> OutputPolicy(actions={"leakage.system_prompt": "block"}).action_for("leakage.system_prompt")
        'block'

    """

    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1)
    actions: dict[str, Action] = Field(default_factory=dict)
    default_action: Action = "warn"
    masks: dict[str, str] = Field(default_factory=dict, description="Replacement per check; <KIND> otherwise.")
    refusal: str = "I can't share that answer because it contained {category}."
    categories: dict[str, str] = Field(default_factory=dict, description="How the refusal names each check.")
    leakage_threshold: float = Field(default=80.0, ge=0, le=100)
    leakage_min_words: int = Field(default=8, ge=3)

    @classmethod
    def load(cls, path: Path | None = None) -> OutputPolicy:
        """Read the policy (the packaged ``policy.yaml`` unless ``path`` is given)."""
        text = path.read_text() if path else files("services.postprocess").joinpath("policy.yaml").read_text()
        return cls.model_validate(yaml.safe_load(text))

    def action_for(self, check: str) -> Action:
        """The action for a finding of ``check``."""
        family = check.split(".", 1)[0] + ".*"
        return self.actions.get(check) or self.actions.get(family) or self.default_action

    def mask_for(self, check: str) -> str:
        """What a redacted span of ``check`` is replaced with (``pii.email`` → ``<EMAIL>``)."""
        return self.masks.get(check, f"<{check.rsplit('.', 1)[-1].upper()}>")

    def refusal_text(self, check: str) -> str:
        """The answer shown instead of one that failed a blocking check."""
        category = self.categories.get(check) or check.split(".", 1)[-1].replace("_", " ")
        return self.refusal.format(category=category)
