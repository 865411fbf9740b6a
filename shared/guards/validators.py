"""guardrails-ai validators, registered once at import: each check of the guard suite is one validator.

Hub validators installed from PyPI are subclassed where their result needs typed spans
(``guardrails-ai-detect-pii``, ``guardrails-ai-secrets-present``, ``guardrails-ai-profanity-free``);
the rest are written here with ``register_validator``. Every error span's ``reason`` is
``"<type>"`` or ``"<type>:<score>"`` (see ``parse_reason``), so the suite can read typed,
scored findings back from guardrails' validation summaries.

Heavy state (the Presidio engine, the embedder, the classifier) is passed in as attributes
after construction, never as validator arguments: guardrails records those arguments.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
from guardrails.validator_base import (
    ErrorSpan,
    FailResult,
    PassResult,
    ValidationResult,
    Validator,
    register_validator,
)
from guardrails_ai.detect_pii.main import DetectPII
from guardrails_ai.profanity_free.main import ProfanityFree
from guardrails_ai.secrets_present.main import SecretsPresent

from shared.guards.detectors import Detection, detect_pii, detect_secrets, is_placeholder, redact
from shared.guards.injection import InjectionClassifier, Mode
from shared.guards.ner_windows import NER_MAX_WORDS, WINDOW, NerBudget, blank_long_words, windows
from shared.guards.pii_entities import (
    clean_entity_span,
    cued_names,
    cued_places,
    detect_addresses,
    listed_names,
)
from shared.guards.profanity import profanity_model
from shared.text.overlaps import first_non_overlapping

__all__ = [
    "BannedTopicsValidator",
    "LengthValidator",
    "PIIValidator",
    "PresidioPIIValidator",
    "ProfanityValidator",
    "PromptInjectionValidator",
    "SecretsValidator",
    "parse_reason",
]

Embed = Any  # a callable str -> normalised vector, or None


def parse_reason(reason: str | None) -> tuple[str, float]:
    """``"email"`` → ``("email", 1.0)``; ``"person:0.85"`` → ``("person", 0.85)``."""
    kind, _, score = (reason or "unknown").partition(":")
    try:
        return kind, float(score) if score else 1.0
    except ValueError:
        return reason or "unknown", 1.0


def _fail(text: str, spans: list[tuple[str, int, int, float]], message: str) -> FailResult:
    return FailResult(
        error_message=message,
        fix_value=redact(text, [Detection(kind, start, end) for kind, start, end, _ in spans]),
        error_spans=[ErrorSpan(start=s, end=e, reason=f"{kind}:{score:.4f}") for kind, s, e, score in spans],
    )


def _embedding(validator: Any, value: str, metadata: dict[str, Any]) -> npt.NDArray[np.float32]:
    vector = metadata.get("embedding")
    if vector is None:
        vector = validator.embed(value)
    return np.asarray(vector, dtype=np.float32)


@register_validator(name="llmops/pii", data_type="string")
class PIIValidator(Validator):
    """Structured personal data by pattern and checksum: email, phone, card (Luhn), US SSN, IBAN (mod 97), IP.

    Example:
        >>> guard = Guard().use(PIIValidator(kinds=["email"], on_fail="fix"))
        >>> guard.validate("mail me at a@b.org").validated_output
        'mail me at <EMAIL>'

    """

    def __init__(self, kinds: list[str] | None = None, on_fail: Any = None, **kwargs: Any) -> None:
        kinds = kinds or ["email", "phone", "credit_card"]
        super().__init__(on_fail=on_fail, kinds=kinds, use_local=True, **kwargs)
        self.kinds = frozenset(kinds)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:  # noqa: ARG002 - guardrails' signature
        text = str(value)
        detections = detect_pii(text, self.kinds)
        if not detections:
            return PassResult()
        return FailResult(
            error_message=f"found {', '.join(sorted({d.kind for d in detections}))}",
            fix_value=redact(text, detections),
            error_spans=[ErrorSpan(start=d.start, end=d.end, reason=d.kind) for d in detections],
        )


@register_validator(name="llmops/presidio_pii", data_type="string")
class PresidioPIIValidator(DetectPII):
    """The hub's ``DetectPII`` on a Presidio engine built offline (``build_analyzer``), with typed spans.

    The hub class builds ``AnalyzerEngine()`` in its constructor, which downloads a spaCy model,
    and reports untyped spans; this keeps its registration and entity map, runs on the given
    engine, and returns ``person:0.85``-style reasons. ``entities`` are Presidio names
    (``PERSON``, ``LOCATION``, ...).
    """

    def __init__(self, entities: list[str] | None = None, min_score: float = 0.5, on_fail: Any = None) -> None:
        entities = entities or ["PERSON", "LOCATION"]
        # Skip DetectPII.__init__ (it builds a downloading AnalyzerEngine); the base's is enough.
        Validator.__init__(self, on_fail=on_fail, pii_entities=entities, min_score=min_score, use_local=True)
        self.pii_entities = entities
        self.min_score = min_score
        self.pii_analyzer: Any = None
        #: The NER's word budget of a text scanned without a request's ``NerBudget`` in its metadata.
        self.ner_max_words = NER_MAX_WORDS

    def _analyze(self, text: str, budget: NerBudget) -> list[Any]:
        """Presidio's results on ``text``, read in windows while the request's ``budget`` lasts (``ner_windows``).

        Results are put back at their offsets and exact repeats (from the overlaps) dropped; the windows
        after the budget are left to the other checks (issue 23: a prompt of 50,000 names took minutes).
        """
        text = blank_long_words(text)
        if len(text) <= WINDOW:
            if not budget.take(text):
                return []
            return list(self.pii_analyzer.analyze(text=text, entities=self.pii_entities, language="en"))
        results: dict[tuple[int, int, str], Any] = {}
        for start, end in windows(text):
            if not budget.take(text[start:end]):
                budget.skipped_chars += len(text) - end
                break
            for r in self.pii_analyzer.analyze(text=text[start:end], entities=self.pii_entities, language="en"):
                r.start, r.end = r.start + start, r.end + start
                results.setdefault((r.start, r.end, r.entity_type), r)
        return list(results.values())

    def validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        """Typed spans of names and places: Presidio's NER, street addresses, and lower-case names after cues.

        ``metadata["ner_budget"]``: the request's ``NerBudget`` (shared by its texts); else one of
        ``ner_max_words`` for this text.
        """
        text = str(value)
        budget = metadata.get("ner_budget") or NerBudget(self.ner_max_words)
        spans: list[tuple[str, int, int, float]] = []
        if "LOCATION" in self.pii_entities:
            spans += [("location", s, e, _ADDRESS_SCORE) for s, e in detect_addresses(text)]
        results = self._analyze(text, budget)
        for r in sorted(results, key=lambda r: r.start):
            cleaned = clean_entity_span(text, r.start, r.end)
            if r.score < self.min_score or cleaned is None or not _looks_like_a_name(text[cleaned[0] : cleaned[1]]):
                continue
            spans.append((r.entity_type.lower(), cleaned[0], cleaned[1], float(r.score)))
        if "PERSON" in self.pii_entities:
            spans += [("person", s, e, _LISTED_SCORE) for s, e in listed_names(text)]
        spans += self._lower_case_entities(text)
        # Addresses first: a street name inside one is not a separate person.
        chosen = first_non_overlapping(spans, lambda s: (s[1], s[2]))
        if not chosen:
            return PassResult()
        return _fail(text, chosen, f"found {', '.join(sorted({s[0] for s in chosen}))}")

    def _lower_case_entities(self, text: str) -> list[tuple[str, int, int, float]]:
        """Lower-case names and places after cues, confirmed by NER on a capitalised copy of each candidate."""
        candidates = []
        if "PERSON" in self.pii_entities:
            candidates += [("PERSON", s, e) for s, e in cued_names(text)]
        if "LOCATION" in self.pii_entities:
            candidates += [("LOCATION", s, e) for s, e in cued_places(text)]
        if not candidates:
            return []
        # One NER call over short sentences that put each candidate, capitalised, in a neutral frame.
        frames = {"PERSON": "My name is {}.", "LOCATION": "I live in {}."}
        probe, placed = "", []
        for kind, s, e in candidates[:_MAX_CUED]:
            title = text[s:e].title()
            at = len(probe) + frames[kind].index("{}")
            placed.append((kind, s, e, at, at + len(title)))
            probe += frames[kind].format(title) + " "
        found = self.pii_analyzer.analyze(text=probe, entities=self.pii_entities, language="en")
        out = []
        for kind, s, e, at, until in placed:
            if any(r.entity_type == kind and r.start < until and at < r.end for r in found):
                out.append((kind.lower(), s, e, _CUED_SCORE))
        return out


_ADDRESS_SCORE = 0.85
_CUED_SCORE = 0.6
_LISTED_SCORE = 0.7
_MAX_CUED = 8

# spaCy's small model sometimes tags "Ticket JIRA-123" or "config =" as a person: names have no digits or code.
_NAME = re.compile(r"^[^\W\d_][^\d_=@/:{}<>\[\]]*$")


_COMPANY_WORDS = frozenset(
    {"pay", "logistik", "logistics", "systems", "studio", "atelier", "gmbh", "ltd", "inc", "bank"}
)


# Software and payment-network names the small model often takes for people or places.
_PRODUCT_WORDS = frozenset(
    {
        "java", "javascript", "typescript", "python", "graphql", "sql", "windows", "linux", "ubuntu", "android",
        "ios", "macos", "react", "kafka", "spark", "docker", "kubernetes", "excel", "outlook", "slack", "jira",
        "github", "gitlab", "terraform", "airflow", "maestro", "visa", "mastercard", "amex", "paypal", "aws",
    }
)  # fmt: skip


def _looks_like_a_name(span: str) -> bool:
    words = span.lower().split()
    if not words or words[-1] in _COMPANY_WORDS or words[0] in _COMPANY_WORDS or span.lower() in _PRODUCT_WORDS:
        return False
    # AKIAXXXXXXXXXXXXXXXX, a placeholder in capitals, is not a name.
    if span.isupper() and (len(span) > 12 or len(set(span)) <= len(span) // 3):  # noqa: PLR2004
        return False
    return bool(_NAME.match(span)) and span[0].isupper()


@register_validator(name="llmops/secrets", data_type="string")
class SecretsValidator(SecretsPresent):
    """The hub's ``SecretsPresent`` (detect-secrets) plus patterns for what it misses, with spans.

    The hub validator masks an AWS key id but leaves the AWS secret access key in place, and for
    a GitHub token masks only the ``ghp`` prefix; ``detect_secrets`` (patterns and entropy) closes
    those gaps, and every hub finding is widened to the whole token it sits in.
    """

    def __init__(self, on_fail: Any = None, *, use_detect_secrets: bool = True) -> None:
        super().__init__(on_fail=on_fail, use_local=True, use_detect_secrets=use_detect_secrets)
        self.use_detect_secrets = use_detect_secrets

    def validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:  # noqa: ARG002 - the hub class overrides validate
        """Typed spans of every secret found by either source."""
        text = str(value)
        found = detect_secrets(text)
        # detect-secrets writes a temp file and runs ~25 plugins (tens of ms); prose without a long
        # token or a key=value pair gives it nothing to find.
        if self.use_detect_secrets and _SECRET_CANDIDATE.search(text):
            hub, _ = self.get_unique_secrets(text if text.endswith("\n") else text + "\n")
            for secret in hub:
                start = text.find(secret)
                while secret and start >= 0:
                    begin, end = _widen(text, start, start + len(secret))
                    if is_placeholder(text[begin:end]) or is_placeholder(secret):
                        start = text.find(secret, end)
                        continue
                    if all(end <= d.start or begin >= d.end for d in found):
                        found.append(Detection("secret", begin, end))
                    start = text.find(secret, end)
        spans = [(d.kind, d.start, d.end, 1.0) for d in sorted(found, key=lambda d: d.start)]
        if not spans:
            return PassResult()
        return _fail(text, spans, f"found {', '.join(sorted({s[0] for s in spans}))}")


_SECRET_CANDIDATE = re.compile(r"[A-Za-z0-9_\-/+=]{20,}|=\s*[\"']?\S{6,}|:\s*[\"']\S{6,}")


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a span to the whole token (letters, digits, ``_-/+=``) around it."""
    allowed = set("_-/+=")
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in allowed):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] in allowed):
        end += 1
    return start, end


@register_validator(name="llmops/profanity", data_type="string")
class ProfanityValidator(ProfanityFree):
    """The hub's ``ProfanityFree`` (alt-profanity-check, model shipped in the package) with a tunable threshold."""

    def __init__(self, threshold: float = 0.5, on_fail: Any = None) -> None:
        super().__init__(on_fail=on_fail, threshold=threshold, use_local=True)
        self.threshold = threshold

    def validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:  # noqa: ARG002 - the hub class overrides validate
        """One span over the text when its profanity probability reaches the threshold."""
        text = str(value)
        score = float(profanity_model().predict_prob([text])[0])
        if score < self.threshold:
            return PassResult()
        return _fail(text, [("profanity", 0, len(text), score)], "offensive language")


@register_validator(name="llmops/prompt_injection", data_type="string")
class PromptInjectionValidator(Validator):
    """Prompt injection and jailbreaks: heuristics plus the MiniLM classifier (``InjectionClassifier``).

    Reads the text's embedding from ``metadata["embedding"]`` when the caller has it (the
    preprocess stage already embeds the prompt), else computes it with ``embed``. ``mode``
    picks the tuned threshold: ``prompt`` for user messages, ``document`` for retrieved chunks.
    """

    def __init__(self, threshold: float | None = None, on_fail: Any = None, mode: Mode = "prompt") -> None:
        super().__init__(on_fail=on_fail, threshold=threshold, mode=mode, use_local=True)
        self.threshold = threshold
        self.mode: Mode = mode
        self.classifier: InjectionClassifier = InjectionClassifier()
        self.embed: Embed = None

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        result = self.classifier.score(text, _embedding(self, text, metadata), self.threshold, self.mode)
        if not result.attack:
            return PassResult()
        start, end = result.hits.get(result.family, (0, len(text)))
        return _fail(text, [(result.family, start, end, result.score)], "prompt injection")


@register_validator(name="llmops/banned_topics", data_type="string")
class BannedTopicsValidator(Validator):
    """Topics a tenant does not serve, matched by cosine similarity of MiniLM embeddings to their descriptions."""

    def __init__(self, topics: dict[str, str] | None = None, threshold: float = 0.5, on_fail: Any = None) -> None:
        topics = topics or {}
        super().__init__(on_fail=on_fail, topics=topics, threshold=threshold, use_local=True)
        self.topics = topics
        self.threshold = threshold
        self.embed: Embed = None
        self._vectors: npt.NDArray[np.float32] | None = None

    def set_topic_vectors(self, vectors: npt.NDArray[np.float32]) -> None:
        """The descriptions' embeddings, one row per topic in ``topics`` order."""
        self._vectors = vectors

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        if not self.topics or self._vectors is None:
            return PassResult()
        text = str(value)
        similarity = self._vectors @ _embedding(self, text, metadata)
        best = int(np.argmax(similarity))
        score = float(similarity[best])
        if score < self.threshold:
            return PassResult()
        return _fail(text, [(list(self.topics)[best], 0, len(text), score)], "banned topic")


@register_validator(name="llmops/length", data_type="string")
class LengthValidator(Validator):
    """Too long a prompt: characters, and tokens (``metadata["token_count"]`` when known, else ~4 chars each)."""

    def __init__(self, max_chars: int = 32_000, max_tokens: int = 8_192, on_fail: Any = None) -> None:
        super().__init__(on_fail=on_fail, max_chars=max_chars, max_tokens=max_tokens, use_local=True)
        self.max_chars = max_chars
        self.max_tokens = max_tokens

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        tokens = int(metadata.get("token_count") or (len(text) + 3) // 4)
        if len(text) > self.max_chars:
            return _fail(text, [("chars", 0, len(text), len(text) / self.max_chars)], "too long")
        if tokens > self.max_tokens:
            return _fail(text, [("tokens", 0, len(text), tokens / self.max_tokens)], "too many tokens")
        return PassResult()
