"""Output checks: PII, secrets, offensive words and leakage in the answer, with the policy's actions.

The answer is scanned through one small interface, ``OutputGuard`` (``scan(text) ->
ScanResult``, what ``shared.components.guards.TextGuard`` offers), so the validators the
safety stage uses on input are the ones used here; the leakage checks come from
``shared.components.guards.leakage``. ``ValidatorScanner`` runs those guardrails validators
directly: a ``Guard`` adds ~2 ms of history and tracing per call, more than a streamed
sentence may cost, and finds exactly the same spans (a test compares them).
Secrets come from the safety stage's ``SecretsValidator`` (the same patterns, incl. the AWS
secret key the hub validator misses); ``ProfanityWords`` gives word spans to mask.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from guardrails.validator_base import FailResult, Validator

from services.postprocess.policy import OutputPolicy
from shared.components.guards import ScanResult, Span
from shared.components.guards.leakage import find_leaks
from shared.components.guards.validators import PIIValidator, SecretsValidator
from shared.components.spans import first_non_overlapping
from shared.messaging.envelope import Envelope, Finding

__all__ = [
    "CheckResult",
    "OutputChecker",
    "OutputContext",
    "OutputGuard",
    "ProfanityWords",
    "ValidatorScanner",
    "default_guards",
]

_SEVERITY: dict[str, Literal["low", "medium", "high"]] = {"block": "high", "redact": "medium", "warn": "low"}
# When spans overlap, the check listed first wins (a key inside a leaked prompt is a leak).
_PRIORITY = ("leakage.", "secret.", "pii.", "offensive.")
_MIN_CUT_CHARS = 20


class OutputGuard(Protocol):
    """What the output checks need from a guard: a cheap constructor, ``warm_up`` and ``scan``."""

    def warm_up(self) -> None:
        """Build heavy state."""

    def scan(self, text: str) -> ScanResult:
        """Spans of everything found in ``text``."""


class ValidatorScanner:
    """Runs guardrails validators (``Validator.validate``) over text; spans are named ``<prefix>.<reason>``.

    Example:
        >>> ValidatorScanner().scan("mail a@b.org").spans[0].check
        'pii.email'

    """

    def __init__(self, validators: Sequence[tuple[str, Validator]] | None = None) -> None:
        self._validators = validators
        self.validators: list[tuple[str, Validator]] = []

    def warm_up(self) -> None:
        """Build the validators (the shared PII validator by default)."""
        self.validators = list(self._validators or [("pii", PIIValidator(kinds=["email", "phone", "credit_card"]))])

    def scan(self, text: str) -> ScanResult:
        """Spans of every validator that fails on ``text``."""
        if not self.validators:
            self.warm_up()
        spans = []
        for prefix, validator in self.validators:
            result = validator.validate(text, {})
            if isinstance(result, FailResult):
                # The shared validators write "kind:score" as the reason; the kind names the check.
                spans += [Span(f"{prefix}.{s.reason.split(':')[0]}", s.start, s.end) for s in result.error_spans or []]
        return ScanResult(text=text, redacted=text, spans=spans)


class ProfanityWords:
    """Offensive words, masked one by one (an ``OutputGuard``).

    The shared ``ProfanityValidator`` scores a whole text, which decides a verdict but cannot
    mask a word inside an otherwise useful answer; this list gives the spans to mask.

    Example:
        >>> ProfanityWords().scan("what a shitty day").spans[0].check
        'offensive.profanity'

    """

    _PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
        (
            "offensive.profanity",
            re.compile(
                r"(?i)\b(?:(?:mother)?fuck(?:ing|er|ers|ed|s)?|shit(?:ty|s)?|bullshit|bitch(?:es)?|bastards?"
                r"|assholes?|cunts?|dickheads?|wankers?)\b"
            ),
        ),
    )

    def warm_up(self) -> None:
        """Nothing to build."""

    def scan(self, text: str) -> ScanResult:
        """Spans of offensive words."""
        spans = []
        for check, pattern in self._PATTERNS:
            for m in pattern.finditer(text):
                group = 1 if pattern.groups else 0
                spans.append(Span(check=check, start=m.start(group), end=m.end(group)))
        return ScanResult(text=text, redacted=text, spans=spans)


def default_guards() -> list[OutputGuard]:
    """The output guards: the shared PII and secrets validators, and offensive words."""
    # detect-secrets' entropy plugins cost tens of ms: the shared patterns alone keep a sentence under 2 ms.
    secrets = ValidatorScanner([("secret", SecretsValidator(use_detect_secrets=False))])
    return [ValidatorScanner(), secrets, ProfanityWords()]


def _cut_out(text: str, parts: Sequence[str]) -> str:
    for part in parts:
        text = text.replace(part, "\n")
    return text


@dataclass(frozen=True)
class OutputContext:
    """What the answer must not repeat: the system prompt or template text, and dropped documents."""

    system_prompts: tuple[str, ...] = ()
    poisoned: tuple[str, ...] = ()

    @classmethod
    def from_envelope(cls, env: Envelope) -> OutputContext:
        """The prompt's instructions, with the retrieved documents, memory and the user's own words cut out.

        The system messages when the template has them; otherwise (models without a system
        role get the instructions inside a user turn) the whole plain-text prompt. Documents
        the safety stage dropped as poisoned (``safety.dropped_documents``, ids of grounding's
        documents) must not be echoed; the prompt's other documents may be quoted freely.
        """
        grounding = env.grounding
        if grounding is None:
            return cls()
        dropped_ids = set(env.safety.dropped_documents) if env.safety is not None else set()
        allowed = [d.text for d in grounding.documents if d.id not in dropped_ids]
        allowed += [text for turn in grounding.memory for text in (turn.user, turn.assistant)]
        messages = env.prepared.messages if env.prepared else env.request.messages if env.request else []
        allowed += [m.content for m in messages if m.role != "system"]
        system = [m.content for m in grounding.messages if m.role == "system"]
        # Short texts are left in: they cannot make a leak (see find_leaks' min_words), and cutting
        # "ok" out of the prompt would cut it out of every word.
        cut = sorted((t for t in allowed if len(t) >= _MIN_CUT_CHARS), key=len, reverse=True)
        prompts = tuple(_cut_out(prompt, cut) for prompt in system or [grounding.prompt])
        return cls(prompts, tuple(d.text for d in grounding.documents if d.id in dropped_ids))

    @property
    def references(self) -> list[tuple[str, str]]:
        """(kind, text) pairs for ``find_leaks``."""
        return [("system_prompt", t) for t in self.system_prompts] + [("poisoned_document", t) for t in self.poisoned]


@dataclass
class CheckResult:
    """The answer after the policy's actions, the findings (no values), and the blocking check if any."""

    text: str
    findings: list[Finding] = field(default_factory=list)
    blocked_by: str | None = None


def _rank(check: str) -> int:
    return next((i for i, prefix in enumerate(_PRIORITY) if check.startswith(prefix)), len(_PRIORITY))


class OutputChecker:
    """Runs the guards and the leakage check over an answer and applies the output policy.

    Example:
        >>> checker = OutputChecker(default_guards(), OutputPolicy.load())
        >>> checker.warm_up()
        >>> checker.check("Write to ann@corp.example.", OutputContext()).text
        'Write to <EMAIL>.'

    """

    def __init__(self, guards: Sequence[OutputGuard] | None = None, policy: OutputPolicy | None = None) -> None:
        self.guards: list[OutputGuard] = list(guards) if guards is not None else default_guards()
        self.policy = policy or OutputPolicy.load()

    def warm_up(self) -> None:
        """Build the guards."""
        for guard in self.guards:
            guard.warm_up()

    def spans(self, text: str, context: OutputContext) -> list[Span]:
        """Every finding, without overlaps, in text order."""
        found = [span for guard in self.guards for span in guard.scan(text).spans]
        policy = self.policy
        found += [
            Span(check=f"leakage.{leak.kind}", start=leak.start, end=leak.end)
            for leak in find_leaks(
                text, context.references, threshold=policy.leakage_threshold, min_words=policy.leakage_min_words
            )
        ]
        ranked = sorted(found, key=lambda s: (_rank(s.check), s.start))
        return first_non_overlapping(ranked, lambda s: (s.start, s.end))

    def check(self, text: str, context: OutputContext, *, allowed: Sequence[tuple[int, int]] = ()) -> CheckResult:
        """Scan ``text`` and apply the policy; spans inside ``allowed`` (the user's own values put back) pass."""
        findings: list[Finding] = []
        redact: list[Span] = []
        for span in self.spans(text, context):
            if any(start <= span.start and span.end <= end for start, end in allowed):
                continue
            action = self.policy.action_for(span.check)
            findings.append(
                Finding(check=span.check, start=span.start, end=span.end, severity=_SEVERITY[action], action=action)
            )
            if action == "redact":
                redact.append(span)
        blocked = next((f.check for f in findings if f.action == "block"), None)
        if blocked is not None:
            return CheckResult(text=self.policy.refusal_text(blocked), findings=findings, blocked_by=blocked)
        out, pos = [], 0
        for span in redact:
            out += [text[pos : span.start], self.policy.mask_for(span.check)]
            pos = span.end
        out.append(text[pos:])
        return CheckResult(text="".join(out), findings=findings)
