"""Measure the chat model's hidden states as the injection classifier's features, leave-one-source-out (experiment).

Usage (the same data and MiniLM cache as ``scripts/train_injection.py``). First fill the cache of
mean-pooled last-layer states of the default chat model (about 0.57 s a line here, first 256 tokens;
resumable, in a seeded random order), then report on the lines embedded:

    PYTHONPATH=. python scripts/loso_llm_features.py --fill --llm-cache /tmp/llmops-qemb \\
        --model ~/.cache/llmops/models/qwen2.5-coder-0.5b-instruct.gguf
    PYTHONPATH=. python scripts/loso_llm_features.py --cache /tmp/llmops-emb --llm-cache /tmp/llmops-qemb

A 0.5B decoder has read far more text than MiniLM, and its states are not trained to make similar
sentences close, so they may keep what makes a text an instruction to the model. Each row is the
shipped recipe (heuristic flags appended, sources weighted alike, strong heuristics on top) with
other features: MiniLM (shipped), the LLM's states (unit length, or standardised per dimension and
scaled to unit length on average), and both; several C, since the states' scale differs.

Results: docs/safety.md, "Model choice".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from loso_variants import report
from train_injection import DEFAULT_FILES, embed

from shared.guards.injection import features
from shared.guards.training import held_out_scores, load_datasets

MAX_TOKENS = 256
ROWS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("minilm (shipped)", (1.0,)),
    ("llm states", (1.0, 4.0, 16.0)),
    ("llm states, standardised", (1.0, 4.0, 16.0)),
    ("minilm + llm states, standardised", (1.0, 4.0, 16.0)),
)

Floats = npt.NDArray[np.float32]


def _path(cache: Path, text: str) -> Path:
    return cache / f"{hashlib.sha256(text.encode()).hexdigest()}.npy"


def fill(texts: list[str], model: Path, cache: Path, threads: int, seed: int = 0) -> None:
    """Embed every text not yet in ``cache`` with the chat model (mean pooling), in a seeded random order."""
    import llama_cpp  # noqa: PLC0415 - only this experiment needs the native library

    cache.mkdir(parents=True, exist_ok=True)
    llm = llama_cpp.Llama(
        str(model),
        embedding=True,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=threads,
        verbose=False,
    )
    started, done = time.perf_counter(), 0
    for i in np.random.default_rng(seed).permutation(len(texts)):
        path = _path(cache, texts[i])
        if path.exists():
            continue
        tokens = llm.tokenize(texts[i].encode(), add_bos=False, special=False)[:MAX_TOKENS]
        clipped = llm.detokenize(tokens).decode(errors="ignore")
        np.save(path, np.asarray(llm.embed(clipped, normalize=True), dtype=np.float32).reshape(-1))
        done += 1
        if done % 100 == 0:
            print(json.dumps({"embedded": done, "seconds": round(time.perf_counter() - started, 1)}), flush=True)


def standardised(states: Floats) -> Floats:
    """Each dimension centred and scaled to unit variance, then the whole divided by sqrt(dimensions)."""
    scaled = (states - states.mean(axis=0)) / (states.std(axis=0) + 1e-6) / np.sqrt(states.shape[1])
    return np.asarray(scaled, dtype=np.float32)


def main() -> int:
    """Fill the cache, or print the LOSO summaries on the lines it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=list(DEFAULT_FILES), help="labelled JSONL files")
    parser.add_argument("--cache", type=Path, help="folder to keep MiniLM embeddings in between runs")
    parser.add_argument("--llm-cache", type=Path, required=True, help="folder to keep the chat model's states in")
    parser.add_argument("--fill", action="store_true", help="only fill the LLM cache (run it apart; resumable)")
    parser.add_argument("--model", type=Path, help="the chat model's GGUF file (with --fill)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    data = load_datasets(args.data)
    if args.fill:
        fill(data.texts, args.model, args.llm_cache, args.threads)
        return 0
    keep = np.flatnonzero([_path(args.llm_cache, t).exists() for t in data.texts])
    minilm = embed(data.texts, args.cache)[keep]
    data = data.subset(keep)
    states = np.stack([np.load(_path(args.llm_cache, t)) for t in data.texts]).astype(np.float32)
    print(json.dumps({"lines": len(keep)}))
    vectors = {
        "minilm (shipped)": minilm,
        "llm states": states,
        "llm states, standardised": standardised(states),
        "minilm + llm states, standardised": np.hstack([minilm, standardised(states)]),
    }
    for name, cs in ROWS:
        for c in cs:
            report(f"{name}, C {c:g}", data, held_out_scores(features(data.texts, vectors[name]), data, c))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
