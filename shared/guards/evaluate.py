"""Scoring the guards on labelled data (``llmops eval-safety``).

Two line formats, told apart by their keys (extra keys are ignored):

- ``{"text": ..., "label": "attack" | "benign"}``: prompt injection and jailbreak;
- ``{"text": ..., "entities": [{"type": "EMAIL", "value": "<exact substring>"}, ...]}``: personal data and
  API keys (an empty list: the line has none).

PII matching is by type and overlap: a labelled value is found when a finding of the same
type overlaps one of its occurrences; a finding is correct when it overlaps a labelled value
of its type. Every secrets finding counts as ``API_KEY``.

When lines carry ``source`` (``owner/repo:path``, reported by repository) or ``category``
(``kind`` for PII lines), the report breaks the scores down by each as well: a detector that
holds on one source and fails on another shows it here, not in the pooled figure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.guards.guard_suite import GuardResources, GuardSuite, Stage
from shared.guards.policy import PII_TYPES, GuardPolicy
from shared.guards.training import source_of

__all__ = ["EVAL_PII_TYPES", "SafetyEval", "evaluate_file", "read_lines"]

EVAL_PII_TYPES = [*PII_TYPES, "API_KEY"]
_BATCH = 64


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


@dataclass
class _Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, *, flagged: bool, attack: bool) -> None:
        self.tp += flagged and attack
        self.fp += flagged and not attack
        self.fn += not flagged and attack
        self.tn += not flagged and not attack

    def rates(self) -> dict[str, float]:
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        return {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "fpr": _ratio(self.fp, self.fp + self.tn),
            "n": self.tp + self.fp + self.fn + self.tn,
        }


@dataclass
class _PIICounts:
    found: int = 0
    gold: int = 0
    correct: int = 0
    predicted: int = 0

    def rates(self) -> dict[str, float]:
        return {
            "precision": _ratio(self.correct, self.predicted),
            "recall": _ratio(self.found, self.gold),
            "n": self.gold,
            "findings": self.predicted,
        }


@dataclass
class SafetyEval:
    """Counts per part; ``report()`` turns them into precision, recall, F1 and FPR."""

    injection: _Counts = field(default_factory=_Counts)
    injection_n: int = 0
    pii_found: Counter[str] = field(default_factory=Counter)  # labelled values found, per type
    pii_gold: Counter[str] = field(default_factory=Counter)  # labelled values, per type
    pii_correct: Counter[str] = field(default_factory=Counter)  # findings that hit a labelled value
    pii_predicted: Counter[str] = field(default_factory=Counter)  # findings, per type
    #: Breakdowns: ``("source" | "category", value)`` → counts.
    injection_by: dict[tuple[str, str], _Counts] = field(default_factory=dict)
    pii_by: dict[tuple[str, str], _PIICounts] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """``{"injection": {...}, "pii": {"EMAIL": {...}}}``; a part with no lines is left out."""
        out: dict[str, Any] = {}
        if self.injection_n:
            out["injection"] = self.injection.rates() | {"n": self.injection_n}
            for (axis, value), counts in sorted(self.injection_by.items()):
                out.setdefault(f"injection_by_{axis}", {})[value] = counts.rates()
        types = [t for t in EVAL_PII_TYPES if self.pii_gold[t] or self.pii_predicted[t]]
        if self.pii_gold or self.pii_predicted:
            out["pii"] = {
                t: {
                    "precision": _ratio(self.pii_correct[t], self.pii_predicted[t]),
                    "recall": _ratio(self.pii_found[t], self.pii_gold[t]),
                    "n": self.pii_gold[t],
                }
                for t in types
            }
            for (axis, value), pii_counts in sorted(self.pii_by.items()):
                out.setdefault(f"pii_by_{axis}", {})[value] = pii_counts.rates()
        return out


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _f1(p: float, r: float) -> float:
    return round(2 * p * r / (p + r), 4) if p + r else 0.0


def _eval_type(check: str, finding_type: str) -> str:
    return "API_KEY" if check == "secrets" else finding_type


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    spans, start = [], text.find(value)
    while value and start >= 0:
        spans.append((start, start + len(value)))
        start = text.find(value, start + 1)
    return spans


def _batches(items: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def _groups(line: dict[str, Any], category_key: str) -> list[tuple[str, str]]:
    out = []
    if line.get("source"):
        out.append(("source", source_of(str(line["source"]))))
    if line.get(category_key):
        label = f"{line['label']}/" if "label" in line else ""
        out.append(("category", f"{label}{line[category_key]}"))
    return out


def evaluate_file(
    path: Path,
    policy: GuardPolicy | None = None,
    resources: GuardResources | None = None,
    stage: Stage = "input",
) -> SafetyEval:
    """Score the injection and PII checks of ``policy`` (every type on, every action redact) on a JSONL file.

    ``stage="context"`` scores the injection lines as retrieved chunks (the document threshold).
    """
    resources = resources or GuardResources()
    base = policy or GuardPolicy()
    lines = read_lines(path)
    result = SafetyEval()

    injection_lines = [line for line in lines if "label" in line]
    if injection_lines:
        checks = base.checks.model_copy(deep=True)
        for name in ("pii", "secrets", "profanity", "banned_topics", "length"):
            checks.get(name).enabled = False
        checks.injection.enabled = True
        checks.context_injection.enabled = True
        suite = GuardSuite(
            base.model_copy(update={"checks": checks}), "context" if stage == "context" else "input", resources
        )
        for batch in _batches(injection_lines):
            vectors = resources.embedder.embed([line["text"] for line in batch])
            for line, vector in zip(batch, vectors, strict=True):
                flagged = bool(suite.scan(line["text"], embedding=vector).findings)
                attack = line["label"] == "attack"
                result.injection.add(flagged=flagged, attack=attack)
                for key in _groups(line, "category"):
                    result.injection_by.setdefault(key, _Counts()).add(flagged=flagged, attack=attack)
                result.injection_n += 1

    pii_lines = [line for line in lines if "entities" in line]
    if pii_lines:
        checks = base.checks.model_copy(deep=True)
        for name in ("injection", "profanity", "banned_topics", "length"):
            checks.get(name).enabled = False
        checks.pii.enabled = checks.secrets.enabled = True
        checks.pii.types = list(PII_TYPES)
        checks.pii.actions = {}
        suite = GuardSuite(base.model_copy(update={"checks": checks}), "input", resources)
        for line in pii_lines:
            _score_pii(result, line, suite)
    return result


def _score_pii(result: SafetyEval, line: dict[str, Any], suite: GuardSuite) -> None:
    text = line["text"]
    gold = [(e["type"], span) for e in line["entities"] for span in _occurrences(text, e["value"])[:1]]
    predicted = [(_eval_type(f.check, f.type), (f.start, f.end)) for f in suite.scan(text).findings]
    groups = [result.pii_by.setdefault(key, _PIICounts()) for key in _groups(line, "kind")]
    for gold_type, (start, end) in gold:
        found = any(t == gold_type and s < end and start < e for t, (s, e) in predicted)
        result.pii_gold[gold_type] += 1
        result.pii_found[gold_type] += found
        for g in groups:
            g.gold += 1
            g.found += found
    for pred_type, (start, end) in predicted:
        correct = any(t == pred_type and s < end and start < e for t, (s, e) in gold)
        result.pii_predicted[pred_type] += 1
        result.pii_correct[pred_type] += correct
        for g in groups:
            g.predicted += 1
            g.correct += correct
