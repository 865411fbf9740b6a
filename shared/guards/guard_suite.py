"""The guard suite: one guardrails ``Guard`` per policy and stage, typed findings and placeholder redaction.

Used by safety on prompts (``stage="input"``) and retrieved chunks (``"context"``); answers are
checked by ``shared.guards.output_scan`` (validators run directly, no ``Guard``: it is on
the streaming path) under the same policy and with the same finding type. Heavy state (Presidio
on spaCy, MiniLM, the injection classifier) lives in one ``GuardResources`` shared by every
tenant's suite.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from guardrails import Guard, OnFailAction

from shared.guards.findings import SPAN_CHECKS, GuardFinding, SuiteResult
from shared.guards.injection import InjectionClassifier
from shared.guards.ner_windows import NerBudget
from shared.guards.offline import go_offline
from shared.guards.policy import GuardPolicy
from shared.guards.validators import (
    BannedTopicsValidator,
    LengthValidator,
    PIIValidator,
    PresidioPIIValidator,
    ProfanityValidator,
    PromptInjectionValidator,
    SecretsValidator,
    parse_reason,
)
from shared.text.embedder import Embedder
from shared.text.overlaps import first_non_overlapping

__all__ = ["GuardResources", "GuardSuite", "Placeholders", "Stage", "build_analyzer"]

Stage = Literal["input", "context"]

_PRESIDIO_TYPES = frozenset({"PERSON", "LOCATION"})
_STAGE_CHECKS: dict[Stage, tuple[str, ...]] = {
    "input": ("length", "secrets", "pii", "profanity", "injection", "banned_topics"),
    "context": ("context_injection",),
}


class Placeholders:
    """Typed, numbered placeholders (``<EMAIL_1>``); the same value gets the same placeholder."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: Counter[str] = Counter()

    def get(self, finding_type: str, value: str) -> str:
        """The placeholder for ``value`` of ``finding_type``, making a new one if needed."""
        key = (finding_type, value)
        if key not in self._by_value:
            self._counts[finding_type] += 1
            placeholder = f"<{finding_type}_{self._counts[finding_type]}>"
            self._by_value[key] = placeholder
            self.mapping[placeholder] = value
        return self._by_value[key]


def build_analyzer() -> Any:
    """A Presidio ``AnalyzerEngine`` on the bundled spaCy model, NER only (no download, a few ms per prompt)."""
    go_offline()
    # Presidio warns at info/warning level about every recognizer for other languages.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import AnalyzerEngine  # noqa: PLC0415 - heavy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine  # noqa: PLC0415

    from shared.text.nlp import NER_ONLY, load_spacy  # noqa: PLC0415

    # Presidio only reads entities; the tagger, lemmatizer and parser would triple the time.
    nlp = load_spacy(disable=NER_ONLY)
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm"}])
    engine.nlp = {"en": nlp}  # type: ignore[assignment] # presidio types it as set by load()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


class GuardResources:
    """What every suite shares: the embedder, the Presidio engine and the injection classifier (built once)."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder or Embedder()
        self.classifier = InjectionClassifier()
        self._analyzer: Any = None
        self._lock = threading.Lock()

    @property
    def analyzer(self) -> Any:
        """The Presidio engine, built on first use."""
        with self._lock:
            if self._analyzer is None:
                self._analyzer = build_analyzer()
            return self._analyzer

    def warm_up(self) -> None:
        """Load everything (a few seconds) so the first request is not slow."""
        go_offline()
        self.embedder.warm_up()
        self.classifier.warm_up()
        self.analyzer.analyze(text="Ada Lovelace lives in London.", language="en", entities=["PERSON"])

    def embed(self, text: str) -> npt.NDArray[np.float32]:
        """The normalised MiniLM embedding of ``text``."""
        return self.embedder.embed_one(text)


class GuardSuite:
    """The enabled checks of a policy for one stage, as one guardrails ``Guard``.

    Example:
        >>> suite = GuardSuite(GuardPolicy())
        >>> suite.warm_up()
        >>> result = suite.scan("Mail me at jo@example.com")
        >>> result.redacted, result.placeholders
        ('Mail me at <EMAIL_1>', {'<EMAIL_1>': 'jo@example.com'})

    """

    def __init__(self, policy: GuardPolicy, stage: Stage = "input", resources: GuardResources | None = None) -> None:
        self.policy = policy
        self.stage = stage
        self.resources = resources or GuardResources()
        self._guard: Guard | None = None
        self._names: dict[str, str] = {}

    @property
    def needs_embedding(self) -> bool:
        """Whether a scan embeds its text (an injection or banned-topics check is on for this stage)."""
        checks = self.policy.checks
        return any(
            checks.get(name).enabled and (name != "banned_topics" or bool(checks.banned_topics.topics))
            for name in _STAGE_CHECKS[self.stage]
            if name in {"injection", "context_injection", "banned_topics"}
        )

    def new_ner_budget(self) -> NerBudget:
        """A request's budget of words for the NER (``PIICheck.ner_max_words``): pass it to each of its scans."""
        return NerBudget(self.policy.checks.pii.ner_max_words)

    def embed_many(self, texts: list[str]) -> list[npt.NDArray[np.float32] | None]:
        """One batched embedding per text when scans need them (pass each to ``scan``), else ``None`` each."""
        if not texts or not self.needs_embedding:
            return [None] * len(texts)
        return list(self.resources.embedder.embed(texts))

    def _validators(self) -> list[tuple[str, Any]]:
        checks = self.policy.checks
        out: list[tuple[str, Any]] = []
        for name in _STAGE_CHECKS[self.stage]:
            if not checks.get(name).enabled:
                continue
            if name == "length":
                out.append((name, LengthValidator(checks.length.max_chars, checks.length.max_tokens)))
            elif name == "secrets":
                out.append((name, SecretsValidator(use_detect_secrets=checks.secrets.detect_secrets)))
            elif name == "pii":
                out.extend(self._pii_validators())
            elif name == "profanity":
                out.append((name, ProfanityValidator(threshold=checks.profanity.threshold)))
            elif name in {"injection", "context_injection"}:
                validator = PromptInjectionValidator(
                    threshold=checks.get(name).threshold,  # type: ignore[attr-defined]
                    mode="document" if name == "context_injection" else "prompt",
                )
                validator.classifier = self.resources.classifier
                validator.embed = self.resources.embed
                out.append((name, validator))
            elif name == "banned_topics" and checks.banned_topics.topics:
                topics = BannedTopicsValidator(checks.banned_topics.topics, checks.banned_topics.threshold)
                topics.embed = self.resources.embed
                topics.set_topic_vectors(self.resources.embedder.embed(list(checks.banned_topics.topics.values())))
                out.append((name, topics))
        return out

    def _pii_validators(self) -> list[tuple[str, Any]]:
        pii = self.policy.checks.pii
        types = {t.upper() for t in pii.types}
        out: list[tuple[str, Any]] = []
        structured = sorted(t.lower() for t in types - _PRESIDIO_TYPES)
        if structured:
            out.append(("pii", PIIValidator(kinds=structured)))
        if types & _PRESIDIO_TYPES:
            presidio = PresidioPIIValidator(entities=sorted(types & _PRESIDIO_TYPES), min_score=pii.min_score)
            presidio.pii_analyzer = self.resources.analyzer
            presidio.ner_max_words = pii.ner_max_words
            out.append(("pii", presidio))
        return out

    def warm_up(self) -> None:
        """Build the guard (telemetry off, nothing leaves the machine)."""
        if self._guard is not None:
            return
        go_offline()
        guard = Guard(name=f"llmops-{self.stage}")
        # Guard() reads ~/.guardrailsrc, whose absence means "metrics on": switch it off on the instance.
        guard.configure(allow_metrics_collection=False)
        validators = self._validators()
        # Summaries name the validator by its class in guardrails 0.11, by its alias elsewhere.
        self._names = {type(v).__name__: check for check, v in validators} | {
            v.rail_alias: check for check, v in validators
        }
        for _, validator in validators:
            validator.on_fail_descriptor = OnFailAction.NOOP
        self._guard = guard.use(*(v for _, v in validators), on="output") if validators else guard

    def scan(
        self,
        text: str,
        *,
        embedding: npt.NDArray[np.float32] | None = None,
        token_count: int | None = None,
        placeholders: Placeholders | None = None,
        ner_budget: NerBudget | None = None,
    ) -> SuiteResult:
        """Run every enabled check on ``text``; ``embedding`` (of ``text``) saves computing it again.

        ``ner_budget``: the words the NER may still read for this text's request (``new_ner_budget``), shared
        by its texts; without it the text has a budget of its own.
        """
        self.warm_up()
        assert self._guard is not None  # noqa: S101 - set by warm_up
        placeholders = placeholders if placeholders is not None else Placeholders()
        if not text.strip() or not self._names:
            return SuiteResult(text=text, findings=[], redacted=text)
        if (too_long := self._blocked_for_length(text)) is not None:
            # Blocked whatever else is found: no other check reads more than the limit (issue 23: its CPU bound).
            return SuiteResult(text=text, findings=[too_long], redacted=text)
        metadata: dict[str, Any] = {"token_count": token_count}
        if embedding is not None:
            metadata["embedding"] = embedding
        if ner_budget is not None:
            metadata["ner_budget"] = ner_budget
        outcome = self._guard.validate(text, metadata=metadata)
        findings = self._findings(outcome.validation_summaries or [])
        redacted = self._redact(text, findings, placeholders)
        used = {p: v for p, v in placeholders.mapping.items() if p in redacted}
        return SuiteResult(text=text, findings=findings, redacted=redacted, placeholders=used)

    def _blocked_for_length(self, text: str) -> GuardFinding | None:
        """The length check's finding, found before any other check, when ``text`` is over a blocking limit."""
        length = self.policy.checks.length
        if "length" not in self._names.values() or len(text) <= length.max_chars:
            return None
        if length.action_for("CHARS") == "warn":  # redact blocks too: a whole-text finding cannot be cut out
            return None
        return GuardFinding("length", "CHARS", 0, len(text), len(text) / length.max_chars, "block")

    def _findings(self, summaries: list[Any]) -> list[GuardFinding]:
        findings: list[GuardFinding] = []
        claims = [
            (self._names.get(s.validator_name, s.validator_name), span)
            for s in summaries
            for span in s.error_spans or []
        ]
        # Secrets run before PII and patterns before Presidio: the first claim on a span wins (linear: issue 23).
        winners = {
            id(span)
            for _, span in first_non_overlapping(
                [claim for claim in claims if claim[0] in SPAN_CHECKS], lambda claim: (claim[1].start, claim[1].end)
            )
        }
        for check, span in claims:
            if check in SPAN_CHECKS and id(span) not in winners:
                continue
            kind, score = parse_reason(span.reason)
            finding_type = kind.upper()
            action = self.policy.checks.get(check).action_for(finding_type)
            if check not in SPAN_CHECKS and action == "redact":
                action = "block"  # a whole-text finding cannot be cut out
            findings.append(GuardFinding(check, finding_type, span.start, span.end, score, action))
        return sorted(findings, key=lambda f: (f.start, f.end))

    @staticmethod
    def _redact(text: str, findings: list[GuardFinding], placeholders: Placeholders) -> str:
        out: list[str] = []
        pos = 0
        for f in findings:
            if f.action not in {"redact", "block"} or f.check not in SPAN_CHECKS or f.start < pos:
                continue
            out.append(text[pos : f.start])
            # A blocked value is masked too but never enters the map, so nothing can restore it.
            out.append(placeholders.get(f.type, text[f.start : f.end]) if f.action == "redact" else f"<{f.type}>")
            pos = f.end
        out.append(text[pos:])
        return "".join(out)
