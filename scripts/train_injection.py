"""Train the prompt-injection classifier and measure it leave-one-source-out.

Usage (the public data stays outside the repository, see ../shared/data/safety/README.md; the
project's own lines are tests/data/safety/injection_own.jsonl, from scripts/make_injection_own.py; the
lines from seven MIT-licensed PyPI packages are tests/data/safety/injection_pypi.jsonl, from
scripts/make_injection_pypi.py; those from sixteen more packages on PyPI, npm and crates.io are
tests/data/safety/injection_packages.jsonl, from scripts/make_injection_packages.py. The benign prompt
templates of sixteen LLM frameworks, tests/data/safety/injection_templates.jsonl, are a check, not training
data; see docs/safety.md):

    PYTHONPATH=. python scripts/train_injection.py --cache /tmp/llmops-emb

Model: a logistic regression on ``[MiniLM embedding | heuristic flags]`` with every (source,
label) group weighted alike (1/sqrt of its size), or-ed with the strong heuristics at serving time.

Measurement, the primary development metric: leave-one-source-out (``training.loso``) over the
training file, the dev file and the project's own lines together; every source is held out once.
Thresholds are chosen on those held-out scores, never on a model's own training lines: the
``prompt`` threshold at ``--target-fpr`` over every held-out benign line, the ``document``
threshold at ``--target-fpr`` over the held-out benign documents (clean emails, pages, tool
outputs). The in-distribution dev score (fit on the training file and the own lines, score the
dev file) is recorded next to it. Writes ``shared/guards/injection_model.npz`` and
``injection_model.json`` (thresholds, data files with sha256, LOSO report, dev score).
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

from shared.guards.injection import FLAG_NAMES, STRONG_FLAGS, STRONG_SCORE, features, heuristic_hits
from shared.guards.training import (
    Dataset,
    fit_logistic,
    held_out_scores,
    load_datasets,
    loso,
    rates,
    sha256,
    source_weights,
)
from shared.text.embedder import Embedder

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "shared" / "guards"
SHARED = ROOT.parent / "shared" / "data" / "safety"
DEFAULT_FILES = (
    SHARED / "injection_train.jsonl",
    SHARED / "injection_dev.jsonl",
    ROOT / "tests" / "data" / "safety" / "injection_own.jsonl",
    ROOT / "tests" / "data" / "safety" / "injection_pypi.jsonl",
    ROOT / "tests" / "data" / "safety" / "injection_packages.jsonl",
)
DOCUMENT_CATEGORIES = frozenset({"document", "indirect"})
C = 1.0


def embed(texts: list[str], cache: Path | None) -> npt.NDArray[np.float32]:
    """MiniLM embeddings, one file per text in ``cache`` (so runs over overlapping data reuse them)."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    missing = []
    for i, text in enumerate(texts):
        path = cache / f"{hashlib.sha256(text.encode()).hexdigest()}.npy" if cache else None
        if path is not None and path.exists():
            out[i] = np.load(path)
        else:
            missing.append(i)
    if missing:
        embedder = Embedder(threads=2)
        vectors = embedder.embed([texts[i] for i in missing])
        for i, vector in zip(missing, vectors, strict=True):
            out[i] = vector
            if cache is not None:
                cache.mkdir(parents=True, exist_ok=True)
                np.save(cache / f"{hashlib.sha256(texts[i].encode()).hexdigest()}.npy", vector)
    return out


def served_scores(data: Dataset, probabilities: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The classifier's probabilities with the strong heuristics applied, as ``InjectionClassifier.score`` does."""
    strong = np.array([bool(STRONG_FLAGS & set(heuristic_hits(t))) for t in data.texts])
    return np.where(strong, np.maximum(probabilities, STRONG_SCORE), probabilities)


def measure(data: Dataset, embeddings: npt.NDArray[np.float32], target_fpr: float) -> dict[str, object]:
    """The LOSO reports (all lines; documents only) and the two thresholds chosen on held-out scores."""
    x = features(data.texts, embeddings)
    scores = served_scores(data, held_out_scores(x, data, C))
    report = loso(data, scores, target_fpr)
    docs = np.flatnonzero([c in DOCUMENT_CATEGORIES for c in data.categories])
    doc_report = loso(data.subset(docs), scores[docs], target_fpr)
    return {
        "loso": report,
        "loso_documents": doc_report,
        "thresholds": {"prompt": report["pooled_threshold"], "document": doc_report["pooled_threshold"]},
    }


def main() -> int:
    """Measure leave-one-source-out, fit on everything, write the weights and the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=list(DEFAULT_FILES), help="labelled JSONL files")
    parser.add_argument("--dev", type=Path, default=SHARED / "injection_dev.jsonl", help="in-distribution dev file")
    parser.add_argument("--target-fpr", type=float, default=0.05, help="held-out FPR the thresholds keep")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for injection_model.npz and .json")
    parser.add_argument("--cache", type=Path, help="folder to keep embeddings in between runs")
    args = parser.parse_args()

    data = load_datasets(args.data)
    embeddings = embed(data.texts, args.cache)
    measured = measure(data, embeddings, args.target_fpr)
    thresholds: dict[str, float] = measured["thresholds"]  # type: ignore[assignment]

    x = features(data.texts, embeddings)
    coef, bias = fit_logistic(x, data.labels, C, source_weights(data))

    # In-distribution: fit without the dev file, score it at the prompt threshold.
    dev_rows = np.array([f == args.dev for f in _file_of_lines(args.data)])
    train = np.flatnonzero(~dev_rows)
    dev_coef, dev_bias = fit_logistic(x[train], data.labels[train], C, source_weights(data.subset(train)))
    dev_idx = np.flatnonzero(dev_rows)
    dev_data = data.subset(dev_idx)
    dev_p = served_scores(dev_data, 1 / (1 + np.exp(-(x[dev_idx] @ dev_coef + dev_bias))))

    record = {
        "model": "logistic regression (every source and label weighted alike) on all-MiniLM-L6-v2 + heuristic "
        "flags, or-ed with the strong heuristics",
        "features": ["embedding[0:384] (normalised all-MiniLM-L6-v2)", *[f"heuristic flag {n}" for n in FLAG_NAMES]],
        "strong_flags": sorted(STRONG_FLAGS),
        "C": C,
        "target_fpr": args.target_fpr,
        "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
        "trained_at": datetime.now(UTC).date().isoformat(),
        "data": [
            {"file": _display(path), "sha256": sha256(path), "lines": len(path.read_text().splitlines())}
            for path in args.data
        ],
        "provenance": "shared/data/safety/README.md (public sources, MIT / Apache-2.0 / CC BY 4.0); "
        "tests/data/safety/injection_own.jsonl written for this project (scripts/make_injection_own.py); "
        "tests/data/safety/injection_pypi.jsonl from seven MIT-licensed PyPI packages (scripts/make_injection_pypi.py, "
        "tests/data/safety/injection_pypi.md); tests/data/safety/injection_packages.jsonl from sixteen MIT- or "
        "Apache-2.0-licensed packages on PyPI, npm and crates.io (scripts/make_injection_packages.py, "
        "tests/data/safety/injection_packages.md)",
        "dev_in_distribution": rates(dev_data.labels, dev_p, thresholds["prompt"]),
        "loso": measured["loso"],
        "loso_documents": measured["loso_documents"],
    }
    np.savez_compressed(args.out / "injection_model.npz", weights=coef.astype(np.float32), bias=np.float32(bias))
    (args.out / "injection_model.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    summary = {k: record["loso"][k] for k in ("mean_recall", "mean_fpr", "pooled_recall", "pooled_fpr")}  # type: ignore[index]
    print(json.dumps({"thresholds": record["thresholds"], "loso": summary, "dev": record["dev_in_distribution"]}))
    return 0


def _file_of_lines(paths: list[Path]) -> list[Path]:
    return [path for path in paths for line in path.read_text().split("\n") if line.strip()]


def _display(path: Path) -> str:
    resolved = path.resolve()
    for base, name in ((ROOT, ""), (ROOT.parent, "")):
        if resolved.is_relative_to(base):
            return name + str(resolved.relative_to(base))
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
