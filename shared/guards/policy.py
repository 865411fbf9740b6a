"""Guard policies: which checks run, their thresholds and the action on a finding, per tenant and stage.

One file for every stage: ``checks`` is what safety does to prompts and retrieved chunks,
``output.checks`` what postprocess does to answers. A policy file has a ``default`` policy and
``tenants`` overrides; a tenant's policy is the default deep-merged with its override, so an
override names only what differs (its ``output`` part included).

Example policy file::

    version: 2
    default:
      checks:
        pii: {action: redact, actions: {CREDIT_CARD: block}}
        injection: {action: block}
      output:
        checks:
          pii: {action: redact}
          leakage: {action: block, mask: ""}
    tenants:
      acme:
        checks:
          pii: {actions: {PERSON: redact}}
        output:
          checks:
            secrets: {action: block}
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from shared.guards.ner_windows import NER_MAX_WORDS

__all__ = [
    "PII_TYPES",
    "Action",
    "BannedTopicsCheck",
    "Checks",
    "GuardPolicy",
    "InjectionCheck",
    "LeakageCheck",
    "LengthCheck",
    "OutputCheck",
    "OutputChecks",
    "OutputPolicy",
    "PIICheck",
    "PolicySet",
    "ProfanityCheck",
    "SecretsCheck",
]

Action = Literal["block", "redact", "warn"]

PII_TYPES = ["EMAIL", "PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "IP_ADDRESS", "PERSON", "LOCATION"]


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    action: Action = "warn"
    actions: dict[str, Action] = Field(default_factory=dict, description="Action per finding type (upper case).")

    def action_for(self, finding_type: str) -> Action:
        """The action for one finding type of this check."""
        return self.actions.get(finding_type.upper(), self.action)


class PIICheck(_Check):
    """Personal data: the structured types by pattern and checksum, PERSON and LOCATION by Presidio."""

    action: Action = "redact"
    types: list[str] = Field(default_factory=lambda: list(PII_TYPES))
    min_score: float = Field(default=0.5, ge=0.0, le=1.0, description="Presidio score below which a name is ignored.")
    ner_max_words: int = Field(
        default=NER_MAX_WORDS,
        ge=0,
        description=(
            "Words (and marks) of one request Presidio's NER reads at most, for names and places (issue 23: its CPU "
            "bound, about 0.1 ms a word); text past it gets every other check. Natural text of about 36,000 "
            "characters fits."
        ),
    )


class SecretsCheck(_Check):
    """API keys, tokens, private keys, AWS key pairs, assigned passwords."""

    action: Action = "block"
    detect_secrets: bool = Field(default=True, description="Also run the hub's detect-secrets scan.")


class ProfanityCheck(_Check):
    """Offensive language (alt-profanity-check)."""

    threshold: float = Field(default=0.8, ge=0.0, le=1.0)


class InjectionCheck(_Check):
    """Prompt injection and jailbreaks; on retrieved context the action is always to drop the chunk."""

    action: Action = "block"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="The trained threshold when absent.")


class BannedTopicsCheck(_Check):
    """Topics the tenant does not serve: name to description, matched by embedding similarity."""

    enabled: bool = False
    action: Action = "block"
    threshold: float = Field(default=0.55, ge=-1.0, le=1.0)
    topics: dict[str, str] = Field(default_factory=dict)


class LengthCheck(_Check):
    """Prompt length limits."""

    action: Action = "block"
    max_chars: int = Field(default=32_000, ge=1)
    max_tokens: int = Field(default=8_192, ge=1)


class Checks(BaseModel):
    """Every check's settings."""

    model_config = ConfigDict(extra="forbid")

    pii: PIICheck = Field(default_factory=PIICheck)
    secrets: SecretsCheck = Field(default_factory=SecretsCheck)
    profanity: ProfanityCheck = Field(default_factory=ProfanityCheck)
    injection: InjectionCheck = Field(default_factory=InjectionCheck)
    context_injection: InjectionCheck = Field(default_factory=InjectionCheck)
    banned_topics: BannedTopicsCheck = Field(default_factory=BannedTopicsCheck)
    length: LengthCheck = Field(default_factory=LengthCheck)

    def get(self, name: str) -> _Check:
        """A check's settings by its name (``pii``, ``secrets``, ...)."""
        check: _Check = getattr(self, name)
        return check


class OutputCheck(_Check):
    """One check on answers: the action per finding type, and what a redacted span becomes."""

    action: Action = "redact"
    mask: str | None = Field(default=None, description="What a redacted span becomes; <TYPE> (<EMAIL>) when absent.")


class LeakageCheck(OutputCheck):
    """The answer repeats the system prompt or a retrieved chunk safety dropped (fuzzy match, 0-100)."""

    action: Action = "block"
    mask: str | None = ""
    threshold: float = Field(default=80.0, ge=0, le=100)
    min_words: int = Field(default=8, ge=3, description="Shorter repeats cannot be a leak.")


class OutputChecks(BaseModel):
    """Every output check's settings; the same names as on input (``pii``, ``secrets``, ``profanity``)."""

    model_config = ConfigDict(extra="forbid")

    pii: OutputCheck = Field(
        default_factory=lambda: OutputCheck(
            action="warn", actions={"EMAIL": "redact", "PHONE": "redact", "CREDIT_CARD": "redact"}
        )
    )
    secrets: OutputCheck = Field(default_factory=OutputCheck)
    profanity: OutputCheck = Field(default_factory=lambda: OutputCheck(mask="****"))
    leakage: LeakageCheck = Field(default_factory=LeakageCheck)

    def get(self, name: str) -> OutputCheck | None:
        """A check's settings by its name; ``None`` for a check answers do not have."""
        if name not in type(self).model_fields:
            return None
        check: OutputCheck = getattr(self, name)
        return check


class OutputPolicy(BaseModel):
    """What postprocess does with each finding on an answer: redact the span, block the answer, or warn.

    Example:
        >>> policy = OutputPolicy()
        >>> policy.action_for("leakage.system_prompt"), policy.mask_for("pii.email")
        ('block', '<EMAIL>')

    """

    model_config = ConfigDict(extra="forbid")

    checks: OutputChecks = Field(default_factory=OutputChecks)
    refusal: str = "I can't share that answer because it contained {category}."
    categories: dict[str, str] = Field(
        default_factory=lambda: {
            "leakage.system_prompt": "parts of my instructions",
            "leakage.poisoned_document": "text from a document that was flagged as unsafe",
        },
        description="How the refusal names a finding (pii.email); the words of describe() otherwise.",
    )

    def enabled(self, finding: str) -> bool:
        """Whether findings of this check are acted on (and recorded) at all."""
        check = self.checks.get(finding.partition(".")[0])
        return check is None or check.enabled

    def action_for(self, finding: str) -> Action:
        """The action for a finding named ``check.type`` (``pii.email``); warn for checks answers do not have."""
        name, _, finding_type = finding.partition(".")
        check = self.checks.get(name)
        return check.action_for(finding_type or name) if check is not None else "warn"

    def mask_for(self, finding: str) -> str:
        """What a redacted span becomes (``pii.email`` → ``<EMAIL>``, profanity → ``****``)."""
        name, _, finding_type = finding.partition(".")
        check = self.checks.get(name)
        if check is not None and check.mask is not None:
            return check.mask
        return f"<{(finding_type or name).upper()}>"

    def refusal_text(self, finding: str) -> str:
        """The answer shown instead of one that failed a blocking check."""
        return self.refusal.format(category=self.categories.get(finding) or describe(finding))


class GuardPolicy(BaseModel):
    """One tenant's effective policy.

    Example:
        >>> GuardPolicy().action_for("pii.credit_card")
        'redact'

    """

    model_config = ConfigDict(extra="forbid")

    checks: Checks = Field(default_factory=Checks)
    refusal: str = "I can't help with this request because it contains {category}."
    restore_placeholders: bool = Field(default=False, description="Postprocess may put the user's values back.")
    output: OutputPolicy = Field(default_factory=OutputPolicy, description="What postprocess does to answers.")

    def action_for(self, finding: str) -> Action:
        """The action for a finding named ``check.type`` (``pii.email``) or just ``check``."""
        check, _, finding_type = finding.partition(".")
        if not hasattr(self.checks, check):
            return "warn"
        return self.checks.get(check).action_for(finding_type or check)

    def refusal_text(self, category: str) -> str:
        """The refusal shown to the user, naming the category but never the matched text."""
        return self.refusal.format(category=describe(category))


def describe(category: str) -> str:
    """Words for a finding name: ``pii.credit_card`` → ``credit card``, ``secrets.api_key`` → ``a secret ...``."""
    check, _, finding_type = category.partition(".")
    words = {
        "injection": "a prompt injection attempt",
        "secrets": "a secret or credential",
        "profanity": "offensive language",
        "banned_topics": f"a topic this service does not cover ({finding_type.replace('_', ' ')})",
        "length": "more text than this service accepts",
    }
    if check in words:
        return words[check]
    return (finding_type or check).replace("_", " ").lower()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "topics":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class PolicySet(BaseModel):
    """The default policy and per-tenant overrides from one YAML file.

    Example:
        >>> policies = PolicySet.load(Path("policy.yaml"))
        >>> policies.for_tenant("acme").checks.pii.action
        'redact'

    """

    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1)
    default: dict[str, Any] = Field(default_factory=dict)
    tenants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    _cache: dict[str, GuardPolicy] = PrivateAttr(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> PolicySet:
        """Read and validate every tenant's policy (the packaged ``policy.yaml`` unless ``path`` is given).

        A typo fails here, at start, not on the first request of that tenant.
        """
        text = path.read_text() if path else files(__package__).joinpath("policy.yaml").read_text()
        data = yaml.safe_load(text) or {}
        if isinstance(data, dict) and {"actions", "default_action", "masks"} & data.keys():
            # The retired postprocess format (one flat list of actions): say what replaced it.
            msg = (
                f"{path}: a postprocess policy of the old format; output actions now live under "
                "`output.checks` of each tenant's policy in the guard policy format (docs/safety.md)"
            )
            raise ValueError(msg)
        policies = cls.model_validate(data)
        for tenant in ["default", *policies.tenants]:
            policies.for_tenant(tenant)
        return policies

    def for_tenant(self, tenant: str) -> GuardPolicy:
        """The default merged with the tenant's override (the default for unknown tenants)."""
        key = tenant if tenant in self.tenants else "default"
        if key not in self._cache:
            self._cache[key] = GuardPolicy.model_validate(_merge(self.default, self.tenants.get(key, {})))
        return self._cache[key]
