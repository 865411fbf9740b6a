"""Fitting and measuring the prompt-injection classifier: data loading, thresholds, leave-one-source-out.

Used by ``scripts/train_injection.py`` (which writes the shipped model) and by the tests that
re-run its leave-one-source-out report. Nothing here runs at serving time.

Leave-one-source-out (LOSO): for each source repository, fit on every other source, choose the
threshold on those sources alone (out-of-fold, folds grouped by source, so the threshold is set on
sources the fold's model has not seen), and score the held-out source: recall on its attacks, FPR
on its benign lines. The mean over sources is the development metric that predicts text from
elsewhere; the in-distribution dev score does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Dataset",
    "fit_logistic",
    "group_oof",
    "held_out_scores",
    "load_datasets",
    "loso",
    "predict_logistic",
    "rates",
    "sha256",
    "source_of",
    "source_weights",
    "threshold_at_fpr",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_MIN_LINES = 5


def source_of(source: str) -> str:
    """The repository of a ``source`` field (``owner/repo:path+owner/repo:path`` → ``owner/repo``)."""
    return source.split("+", maxsplit=1)[0].split(":", maxsplit=1)[0] or "unknown"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Dataset:
    """Labelled lines: texts, 0/1 labels (1 = attack), source repositories and categories."""

    texts: list[str]
    labels: Ints
    sources: list[str]
    categories: list[str]

    def __len__(self) -> int:
        """Number of lines."""
        return len(self.texts)

    def subset(self, index: Sequence[int] | Ints) -> Dataset:
        """The lines at ``index``."""
        idx = [int(i) for i in index]
        return Dataset(
            [self.texts[i] for i in idx],
            self.labels[idx],
            [self.sources[i] for i in idx],
            [self.categories[i] for i in idx],
        )


def load_datasets(paths: Iterable[Path]) -> Dataset:
    """The ``{"text", "label", "source", "category"}`` lines of JSONL files, concatenated."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows += [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
    return Dataset(
        [r["text"] for r in rows],
        np.array([1 if r["label"] == "attack" else 0 for r in rows], dtype=np.int64),
        [source_of(r.get("source", "")) for r in rows],
        [str(r.get("category", "")) for r in rows],
    )


def rates(y: Ints, p: Floats, threshold: float) -> dict[str, float]:
    """Precision, recall, F1, false-positive rate and count at ``threshold``."""
    pred = p >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "fpr": round(fp / (fp + tn) if fp + tn else 0.0, 4),
        "n": len(y),
        "attacks": tp + fn,
        "benign": fp + tn,
    }


def threshold_at_fpr(y: Ints, p: Floats, target_fpr: float) -> float:
    """The lowest threshold whose false-positive rate on ``y == 0`` is at most ``target_fpr``."""
    negatives = np.sort(p[y == 0])[::-1]
    allowed = int(np.floor(target_fpr * len(negatives)))
    # Strictly above the (allowed+1)-th highest benign score.
    return float(np.nextafter(negatives[allowed], 1.0)) if allowed < len(negatives) else 0.5


def fit_logistic(x: Any, y: Ints, c: float, weights: Floats | None = None) -> tuple[Floats, float]:
    """A class-balanced logistic regression: ``(coefficients, intercept)``."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - heavy, training only

    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    model.fit(x, y, sample_weight=weights)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def predict_logistic(x: Any, coef: Floats, bias: float) -> Floats:
    """P(attack) of each row of ``x`` under ``fit_logistic``'s ``(coefficients, intercept)``."""
    logits = np.asarray(x @ coef).ravel() + bias
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)


def group_oof(x: Any, y: Ints, groups: Sequence[str], c: float, folds: int = 5) -> Floats:
    """Out-of-fold probabilities with folds grouped by source (no source in both fit and score)."""
    from sklearn.model_selection import GroupKFold  # noqa: PLC0415

    oof = np.zeros(len(y))
    for fit_idx, val_idx in GroupKFold(n_splits=folds).split(x, y, groups=list(groups)):
        coef, bias = fit_logistic(x[fit_idx], y[fit_idx], c)
        oof[val_idx] = predict_logistic(x[val_idx], coef, bias)
    return oof


def source_weights(data: Dataset) -> Floats:
    """Per-line weights that give every (source, label) group the same total weight (mean weight 1)."""
    groups = [(s, int(y)) for s, y in zip(data.sources, data.labels, strict=True)]
    counts: dict[tuple[str, int], int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    weights = np.array([1.0 / np.sqrt(counts[g]) for g in groups])
    return np.asarray(weights * len(weights) / weights.sum(), dtype=np.float64)


def held_out_scores(
    x: Any, data: Dataset, c: float, *, only: Sequence[str] | None = None, balance: bool = True
) -> Floats:
    """Each line's probability from a model fitted without its source (``nan`` for sources not in ``only``)."""
    src = np.array(data.sources)
    scores = np.full(len(data), np.nan)
    for source in sorted(set(data.sources)):
        if only is not None and source not in only:
            continue
        test, train = np.flatnonzero(src == source), np.flatnonzero(src != source)
        weights = source_weights(data.subset(train)) if balance else None
        coef, bias = fit_logistic(x[train], data.labels[train], c, weights)
        scores[test] = predict_logistic(x[test], coef, bias)
    return scores


def loso(data: Dataset, scores: Floats, target_fpr: float) -> dict[str, Any]:
    """Leave-one-source-out report from ``held_out_scores``: per source, means, pooled, per category.

    A held-out source's threshold is the one at ``target_fpr`` on the other sources' held-out benign
    scores, so a source's own lines never choose its threshold. The pooled figures use one threshold
    chosen on every held-out benign score (the shipped model's rule).
    """
    src = np.array(data.sources)
    labels = data.labels
    scored = ~np.isnan(scores)
    per_source: dict[str, dict[str, float]] = {}
    flagged = np.zeros(len(data), dtype=bool)
    for source in sorted(set(src[scored])):
        idx = src == source
        others = scored & ~idx
        threshold = threshold_at_fpr(labels[others], scores[others], target_fpr)
        per_source[source] = rates(labels[idx], scores[idx], threshold) | {"threshold": round(threshold, 4)}
        flagged[idx] = scores[idx] >= threshold
    recalls = [r["recall"] for r in per_source.values() if r["attacks"]]
    fprs = [r["fpr"] for r in per_source.values() if r["benign"]]
    categories: dict[str, dict[str, float]] = {}
    cats = np.array(data.categories)
    for label, category in sorted({(int(labels[i]), data.categories[i]) for i in np.flatnonzero(scored)}):
        idx = np.flatnonzero(scored & (labels == label) & (cats == category))
        key = f"{'attack' if label else 'benign'}/{category}"
        categories[key] = {"n": len(idx), "flagged": round(float(np.mean(flagged[idx])), 4)}
    pooled = threshold_at_fpr(labels[scored], scores[scored], target_fpr)
    pooled_rates = rates(labels[scored], scores[scored], pooled)
    return {
        "target_fpr": target_fpr,
        "mean_recall": round(float(np.mean(recalls)), 4) if recalls else 0.0,
        "mean_fpr": round(float(np.mean(fprs)), 4) if fprs else 0.0,
        "pooled_threshold": round(pooled, 6),
        "pooled_recall": pooled_rates["recall"],
        "pooled_fpr": pooled_rates["fpr"],
        "per_source": per_source,
        "per_category": categories,
    }
