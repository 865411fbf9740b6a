"""Train the prompt-injection classifier: logistic regression on MiniLM embeddings, hashed n-grams, heuristic flags.

Usage (the data stays outside the repository, see ../shared/data/safety/README.md):

    PYTHONPATH=. python scripts/train_injection.py \
        --train ../shared/data/safety/injection_train.jsonl --dev ../shared/data/safety/injection_dev.jsonl

The regularisation strength and the decision threshold are chosen by 5-fold cross-validation
on the training file only (the threshold is the lowest whose pooled out-of-fold false-positive
rate is at most ``--target-fpr``); the dev file is scored once, at the end, and recorded.
Writes ``shared/components/guards/injection_model.npz`` (weights) and ``injection_model.json``
(threshold, provenance, scores). ``--cache`` keeps the embeddings between runs (outside the repo).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from shared.components.embedder import Embedder
from shared.components.guards.injection import CHAR_FEATURES, FLAG_NAMES, WORD_FEATURES, features

OUT = Path(__file__).resolve().parents[1] / "shared" / "components" / "guards"


def load(path: Path) -> tuple[list[str], npt.NDArray[np.int64], list[str]]:
    """Texts, 0/1 labels and source repositories of a JSONL file."""
    rows = [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
    texts = [r["text"] for r in rows]
    labels = np.array([1 if r["label"] == "attack" else 0 for r in rows])
    return texts, labels, [r.get("source", "").split(":")[0] for r in rows]


def embed(embedder: Embedder, texts: list[str], cache: Path | None) -> npt.NDArray[np.float32]:
    """MiniLM embeddings, read from ``cache`` when it holds the same texts."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    if cache is not None and (cache / f"{key}.npy").exists():
        return np.load(cache / f"{key}.npy")
    vectors = embedder.embed(texts)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / f"{key}.npy", vectors)
    return vectors


def rates(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64], threshold: float) -> dict[str, float]:
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
    }


def threshold_at_fpr(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64], target_fpr: float) -> float:
    """The lowest threshold whose false-positive rate on ``y == 0`` is at most ``target_fpr``."""
    negatives = np.sort(p[y == 0])[::-1]
    allowed = int(np.floor(target_fpr * len(negatives)))
    # Strictly above the (allowed+1)-th highest benign score.
    return float(np.nextafter(negatives[allowed], 1.0)) if allowed < len(negatives) else 0.5


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    """Train the injection classifier and write its weights and metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--target-fpr", type=float, default=0.03, help="pooled out-of-fold FPR the threshold keeps")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for injection_model.npz and .json")
    parser.add_argument("--cache", type=Path, help="folder to keep embeddings in between runs")
    args = parser.parse_args()

    embedder = Embedder()
    embedder.warm_up()
    train_texts, y, _ = load(args.train)
    x = features(train_texts, embed(embedder, train_texts, args.cache))

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=13)
    best: tuple[float, float, float, npt.NDArray[np.float64]] | None = None
    for c in (2.0, 8.0, 32.0):
        oof = np.zeros(len(y))
        for fit_idx, val_idx in folds.split(x, y):
            model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
            model.fit(x[fit_idx], y[fit_idx])
            oof[val_idx] = model.predict_proba(x[val_idx])[:, 1]
        threshold = threshold_at_fpr(y, oof, args.target_fpr)
        recall = rates(y, oof, threshold)["recall"]
        print(f"C={c}: cv recall {recall:.4f} at threshold {threshold:.4f}", file=sys.stderr)
        if best is None or recall > best[1]:
            best = (c, recall, threshold, oof)
    assert best is not None  # noqa: S101
    c, _, threshold, oof = best

    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x, y)
    dev_texts, dev_y, dev_sources = load(args.dev)
    dev_p = model.predict_proba(features(dev_texts, embed(embedder, dev_texts, args.cache)))[:, 1]
    dev = rates(dev_y, dev_p, threshold)
    per_source = {
        src: rates(dev_y[idx], dev_p[idx], threshold)
        for src in sorted(set(dev_sources))
        if len(idx := np.array([i for i, s in enumerate(dev_sources) if s == src])) >= 5  # noqa: PLR2004
    }
    record = {
        "model": "logistic regression (class_weight balanced) on all-MiniLM-L6-v2 + hashed n-grams + heuristic flags",
        "features": [
            "embedding[0:384] (normalised all-MiniLM-L6-v2)",
            f"hashed word 1-2-grams [{WORD_FEATURES}] (log1p counts, L2-normalised)",
            f"hashed char_wb 3-5-grams [{CHAR_FEATURES}] (log1p counts, L2-normalised)",
            *[f"heuristic flag {name}" for name in FLAG_NAMES],
        ],
        "target_cv_fpr": args.target_fpr,
        "threshold": round(threshold, 6),
        "C": c,
        "trained_at": datetime.now(UTC).date().isoformat(),
        "data": {
            "train": {"file": "shared/data/safety/injection_train.jsonl", "sha256": _sha256(args.train), "n": len(y)},
            "dev": {"file": "shared/data/safety/injection_dev.jsonl", "sha256": _sha256(args.dev), "n": len(dev_y)},
            "provenance": "shared/data/safety/README.md (public sources, MIT / Apache-2.0 / CC BY 4.0)",
        },
        "cv_train": rates(y, oof, threshold),
        "dev": dev,
        "dev_per_source": per_source,
    }
    np.savez_compressed(
        args.out / "injection_model.npz",
        weights=model.coef_[0].astype(np.float32),
        bias=np.float32(model.intercept_[0]),
    )
    (args.out / "injection_model.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: record[k] for k in ("C", "threshold", "cv_train", "dev")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
