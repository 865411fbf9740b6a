"""Output checks: PII, secrets, profanity and leakage in an answer, under a tenant's ``OutputPolicy``.

The same validators and finding type as on input (``GuardFinding``, named ``<check>.<type>``:
``pii.email``, ``secrets.api_key``, ``profanity.profanity``, ``leakage.system_prompt``), with the
actions of the policy file's ``output`` section. ``ValidatorScanner`` runs the guardrails
validators directly rather than through a ``Guard``: a ``Guard`` adds ~2 ms of history and
tracing per call, more than a streamed sentence may cost, and finds exactly the same spans (a
test compares them). Secrets come from the safety stage's ``SecretsValidator`` (the same
patterns, incl. the AWS secret key the hub validator misses); ``ProfanityWords`` gives word
spans to mask.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from guardrails.validator_base import FailResult, Validator

from shared.guards.findings import GuardFinding, SuiteResult
from shared.guards.guard import ScanResult, Span
from shared.guards.leakage import find_leaks
from shared.guards.policy import OutputPolicy
from shared.guards.validators import PIIValidator, SecretsValidator
from shared.text.overlaps import first_non_overlapping

__all__ = [
    "OUTPUT_CHECKS",
    "OutputGuard",
    "OutputScanner",
    "ProfanityWords",
    "ValidatorScanner",
    "default_output_guards",
]

# The checks answers get; when spans overlap, the one listed first wins (a key inside a leaked prompt is a leak).
OUTPUT_CHECKS = ("leakage", "secrets", "pii", "profanity")


class OutputGuard(Protocol):
    """What the output checks need from a guard: a cheap constructor, ``warm_up``, ``scan``, and ``checks``.

    ``checks`` names the checks its spans belong to (``{"pii"}``): when the policy turns all of them off, the
    guard is not run at all.
    """

    checks: frozenset[str]

    def warm_up(self) -> None:
        """Build heavy state."""

    def scan(self, text: str) -> ScanResult:
        """Spans of everything found in ``text``, each named ``<check>.<type>``."""


class ValidatorScanner:
    """Runs guardrails validators (``Validator.validate``) over text; spans are named ``<check>.<reason>``.

    Example:
        >>> ValidatorScanner().scan("mail a@b.org").spans[0].check
        'pii.email'

    """

    def __init__(self, validators: Sequence[tuple[str, Validator]] | None = None) -> None:
        self._validators = validators
        self.validators: list[tuple[str, Validator]] = []
        #: The checks its spans are named after (the default validator's is ``pii``).
        self.checks = frozenset(check for check, _ in validators) if validators else frozenset({"pii"})

    def warm_up(self) -> None:
        """Build the validators (the shared PII validator by default)."""
        self.validators = list(self._validators or [("pii", PIIValidator(kinds=["email", "phone", "credit_card"]))])

    def scan(self, text: str) -> ScanResult:
        """Spans of every validator that fails on ``text``."""
        if not self.validators:
            self.warm_up()
        spans = []
        for check, validator in self.validators:
            result = validator.validate(text, {})
            if isinstance(result, FailResult):
                # The shared validators write "kind:score" as the reason; the kind is the finding's type.
                spans += [Span(f"{check}.{s.reason.split(':')[0]}", s.start, s.end) for s in result.error_spans or []]
        return ScanResult(text=text, redacted=text, spans=spans)


class ProfanityWords:
    """Offensive words, masked one by one (an ``OutputGuard``).

    The shared ``ProfanityValidator`` scores a whole text, which decides a verdict but cannot
    mask a word inside an otherwise useful answer; this list gives the spans to mask.

    Example:
        >>> ProfanityWords().scan("what a shitty day").spans[0].check
        'profanity.profanity'

    """

    checks = frozenset({"profanity"})
    _PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
        (
            "profanity.profanity",
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


def default_output_guards() -> list[OutputGuard]:
    """The output guards: the shared PII and secrets validators, and offensive words."""
    # detect-secrets' entropy plugins cost tens of ms: the shared patterns alone keep a sentence under 2 ms.
    secrets = ValidatorScanner([("secrets", SecretsValidator(use_detect_secrets=False))])
    return [ValidatorScanner(), secrets, ProfanityWords()]


def _runs(guard: OutputGuard, policy: OutputPolicy) -> bool:
    """Whether a guard has a check the policy leaves on."""
    return any(policy.enabled(check) for check in guard.checks)


def _rank(finding: GuardFinding) -> int:
    return OUTPUT_CHECKS.index(finding.check) if finding.check in OUTPUT_CHECKS else len(OUTPUT_CHECKS)


class OutputScanner:
    """Runs the output guards and the leakage check over an answer and applies an output policy.

    ``SuiteResult.redacted`` has each redact-finding replaced by its mask; ``blocking`` names
    the finding a refusal should name when any blocks.

    Example:
        >>> scanner = OutputScanner()
        >>> scanner.warm_up()
        >>> scanner.scan("Write to ann@corp.example.", OutputPolicy()).redacted
        'Write to <EMAIL>.'

    """

    def __init__(self, guards: Sequence[OutputGuard] | None = None) -> None:
        self.guards: list[OutputGuard] = list(guards) if guards is not None else default_output_guards()

    def warm_up(self) -> None:
        """Build the guards."""
        for guard in self.guards:
            guard.warm_up()

    def findings(
        self, text: str, policy: OutputPolicy, references: Sequence[tuple[str, str]] = ()
    ) -> list[GuardFinding]:
        """Every finding of an enabled check with the policy's action, without overlaps, in text order."""
        found = [
            GuardFinding(check, kind.upper(), span.start, span.end, 1.0, policy.action_for(span.check))
            for guard in self.guards
            if _runs(guard, policy)
            for span in guard.scan(text).spans
            if policy.enabled(span.check)
            for check, _, kind in [span.check.partition(".")]
        ]
        leakage = policy.checks.leakage
        if leakage.enabled and references:
            found += [
                GuardFinding(
                    "leakage", leak.kind.upper(), leak.start, leak.end, leak.score / 100, leakage.action_for(leak.kind)
                )
                for leak in find_leaks(text, references, threshold=leakage.threshold, min_words=leakage.min_words)
            ]
        ranked = sorted(found, key=lambda f: (_rank(f), f.start))
        return first_non_overlapping(ranked, lambda f: (f.start, f.end))

    def scan(
        self,
        text: str,
        policy: OutputPolicy,
        *,
        references: Sequence[tuple[str, str]] = (),
        allowed: Sequence[tuple[int, int]] = (),
    ) -> SuiteResult:
        """Scan ``text``; ``references`` are (kind, text) a leak may repeat, spans inside ``allowed`` pass."""
        findings = [
            f
            for f in self.findings(text, policy, references)
            if not any(start <= f.start and f.end <= end for start, end in allowed)
        ]
        out, pos = [], 0
        for f in findings:
            if f.action == "redact":
                out += [text[pos : f.start], policy.mask_for(f.name)]
                pos = f.end
        out.append(text[pos:])
        return SuiteResult(text=text, findings=findings, redacted="".join(out))
