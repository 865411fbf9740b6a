"""Measure two variants of the shipped injection model leave-one-source-out (experiments; nothing is shipped).

Usage (the same data and embedding cache as ``scripts/train_injection.py``; about a minute each, cached):

    PYTHONPATH=. python scripts/loso_variants.py windows --cache /tmp/llmops-emb
    PYTHONPATH=. python scripts/loso_variants.py composites --seed 0 --per-document 2 --cache /tmp/llmops-emb

``windows``: the fold's model also scores every pair of consecutive sentences of a text with three or
more sentences; the text's score is the maximum over its windows and itself, or a blend of the two.

``composites``: extra attack lines for training only. Each clean document (benign, category
``document``, over 200 characters) gets ``--per-document`` short direct or extraction attacks of other
lines planted at a random sentence boundary. A composite is left out of a fold when either of its
parents' sources is held out, so no held-out text is ever trained on. Composites are a group of their
own in the source weighting.

Both print the LOSO summary next to the shipped model's, with the document report and the indirect
category. Results: docs/safety.md, "Model choice".
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
from train_injection import DEFAULT_FILES, DOCUMENT_CATEGORIES, C, embed, served_scores

from shared.guards.injection import features
from shared.guards.training import Dataset, fit_logistic, load_datasets, loso, predict_logistic, source_weights

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WINDOW_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
MIN_SENTENCES = 3
MIN_DOCUMENT_CHARS = 200
PAYLOAD_CHARS = (20, 300)
WINDOW_CHARS = 1000
BLENDS = (1.0, 0.7, 0.5)
SUMMARY = ("mean_recall", "mean_fpr", "pooled_recall", "pooled_fpr")

Floats = npt.NDArray[np.float64]


def report(name: str, data: Dataset, scores: Floats) -> None:
    """One line: the LOSO summary, the indirect category, and the document-only LOSO summary."""
    served = served_scores(data, scores)
    full = loso(data, served, 0.05)
    docs = np.flatnonzero([c in DOCUMENT_CATEGORIES for c in data.categories])
    documents = loso(data.subset(docs), served[docs], 0.05)
    line = {
        "variant": name,
        **{k: full[k] for k in SUMMARY},
        "indirect_flagged": full["per_category"]["attack/indirect"]["flagged"],
        "documents": {k: documents[k] for k in SUMMARY},
    }
    print(json.dumps(line))


def windows(data: Dataset, x: npt.NDArray[np.float32], cache: Path | None) -> None:
    """Score sentence-pair windows with each fold's model; report the maximum and blends with the full text."""
    texts, owners = [], []
    for i, text in enumerate(data.texts):
        sentences = [s.strip() for s in _WINDOW_SPLIT.split(text) if len(s.strip()) > MIN_SENTENCES]
        if len(sentences) < MIN_SENTENCES:
            continue
        for j in range(len(sentences) - 1):
            texts.append(" ".join(sentences[j : j + 2])[:WINDOW_CHARS])
            owners.append(i)
    owner = np.array(owners)
    wx = features(texts, embed(texts, cache))
    src = np.array(data.sources)
    full, best = np.zeros(len(data)), np.full(len(data), -1.0)
    for source in sorted(set(data.sources)):
        test, train = np.flatnonzero(src == source), np.flatnonzero(src != source)
        coef, bias = fit_logistic(x[train], data.labels[train], C, source_weights(data.subset(train)))
        full[test] = predict_logistic(x[test], coef, bias)
        mine = np.isin(owner, test)
        np.maximum.at(best, owner[mine], predict_logistic(wx[mine], coef, bias))
    has = best >= 0
    report("full text", data, full)
    for a in BLENDS:
        report(f"windows, blend {a}", data, np.where(has, np.maximum(full, a * best + (1 - a) * full), full))


def composites(data: Dataset, x: npt.NDArray[np.float32], cache: Path | None, seed: int, per_document: int) -> None:
    """Train each fold with planted-instruction composites whose parents are both outside the held-out source."""
    rng = random.Random(seed)  # noqa: S311 - sampling an experiment, not a secret
    labels, cats, src = data.labels, data.categories, np.array(data.sources)
    documents = [
        i
        for i in range(len(data))
        if labels[i] == 0 and cats[i] == "document" and len(data.texts[i]) > MIN_DOCUMENT_CHARS
    ]
    payloads = [
        i
        for i in range(len(data))
        if labels[i] == 1
        and cats[i] in {"direct", "extraction"}
        and PAYLOAD_CHARS[0] < len(data.texts[i]) < PAYLOAD_CHARS[1]
    ]
    texts, parents = [], []
    for d in documents:
        parts = _SENTENCE_END.split(data.texts[d])
        for _ in range(per_document):
            p = rng.choice(payloads)
            k = rng.randint(1, max(1, len(parts) - 1))
            texts.append(" ".join([*parts[:k], data.texts[p], *parts[k:]]))
            parents.append((src[d], src[p]))
    cx = features(texts, embed(texts, cache))
    doc_src, pay_src = np.array([a for a, _ in parents]), np.array([b for _, b in parents])
    plain, augmented = np.zeros(len(data)), np.zeros(len(data))
    for source in sorted(set(data.sources)):
        test, train = np.flatnonzero(src == source), np.flatnonzero(src != source)
        fold = data.subset(train)
        coef, bias = fit_logistic(x[train], fold.labels, C, source_weights(fold))
        plain[test] = predict_logistic(x[test], coef, bias)
        keep = np.flatnonzero((doc_src != source) & (pay_src != source))
        grown = Dataset(
            fold.texts + [texts[i] for i in keep],
            np.concatenate([fold.labels, np.ones(len(keep), dtype=fold.labels.dtype)]),
            fold.sources + ["composite"] * len(keep),
            fold.categories + ["indirect"] * len(keep),
        )
        coef, bias = fit_logistic(np.vstack([x[train], cx[keep]]), grown.labels, C, source_weights(grown))
        augmented[test] = predict_logistic(x[test], coef, bias)
    print(json.dumps({"documents": len(documents), "payloads": len(payloads), "composites": len(texts)}))
    report("shipped", data, plain)
    report(f"composites seed {seed} x{per_document}", data, augmented)


def main() -> int:
    """Run one variant on the training data and print the reports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=["windows", "composites"])
    parser.add_argument("--data", type=Path, nargs="+", default=list(DEFAULT_FILES), help="labelled JSONL files")
    parser.add_argument("--cache", type=Path, help="folder to keep embeddings in between runs")
    parser.add_argument("--seed", type=int, default=0, help="composites: random seed")
    parser.add_argument("--per-document", type=int, default=2, help="composites: attacks planted per document")
    args = parser.parse_args()
    data = load_datasets(args.data)
    x = features(data.texts, embed(data.texts, args.cache))
    if args.variant == "windows":
        windows(data, x, args.cache)
    else:
        composites(data, x, args.cache, args.seed, args.per_document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
