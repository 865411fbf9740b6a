"""``llmops replay --since T [--until T] [--tenant X] --candidate model=...,template=...,policy=...``.

Reads the requests recorded on the requests topic in the window, sends each again as a shadow
request under the candidate configuration (answers on the shadow reply topic: never a user's,
never cached, never remembered), pairs each shadow answer with the answer users got, and writes
``replay.md``, ``replay.json`` and ``replay.png``. Needs a running pipeline (``--bootstrap``, else
``LLMOPS_KAFKA_BOOTSTRAP``): the traffic to replay is that pipeline's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from tqdm import tqdm

from shared.client import BROKER_ERRORS, LlmopsClient
from shared.contracts.envelope import Envelope
from shared.eval.comparison import ReplayReport, build_comparison, write_comparison
from shared.eval.replay import (
    Candidate,
    Replayer,
    ShadowResult,
    TimeWindow,
    pair_answers,
    parse_candidate,
    read_answers,
    read_requests,
    select_requests,
)
from shared.models.registry import ModelRegistry, UnknownModelError
from shared.runtime.settings import CoreSettings
from shared.text.embedder import Embedder

__all__ = ["add_parser", "run"]

_RUN_ERRORS: tuple[type[Exception], ...] = (*BROKER_ERRORS, RuntimeError, TimeoutError)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``llmops replay``."""
    replay = sub.add_parser(
        "replay", help="replay recorded requests under a candidate configuration as shadow traffic; compare"
    )
    replay.add_argument("--since", required=True, help="ISO time (UTC when no zone) or an age: 30m, 2h, 7d")
    replay.add_argument("--until", help="end of the window (default: now)")
    replay.add_argument("--tenant", help="only this tenant's requests")
    replay.add_argument(
        "--candidate",
        required=True,
        metavar="model=...,template=...,policy=...",
        help="what to change: a registry model, a template (name@version), a named safety policy",
    )
    replay.add_argument(
        "--bootstrap", metavar="HOST:PORT", help="the pipeline's broker (default: LLMOPS_KAFKA_BOOTSTRAP)"
    )
    replay.add_argument("--out", type=Path, default=Path("replay-out"), help="output folder (default: replay-out)")
    replay.add_argument("--limit", type=int, help="replay at most this many requests (the oldest)")
    replay.add_argument("--concurrency", type=int, default=2, help="shadow requests in flight at once (default: 2)")
    replay.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each shadow answer")


def _model_check(core: CoreSettings, candidate: Candidate) -> tuple[ModelRegistry | None, str | None]:
    """The registry when the candidate names a model it has; else the error to print."""
    if candidate.model is None:
        return None, None
    registry = ModelRegistry.load(core.registry_path, default=core.default_model)
    try:
        registry.get(candidate.model)
    except UnknownModelError as exc:
        return None, str(exc)
    return registry, None


def _print_summary(report: ReplayReport, written: list[Path]) -> None:
    s = report.summary
    similarity = "–" if s.similarity_mean is None else f"{s.similarity_mean:.3f}"
    print(  # noqa: T201
        f"{s.candidate}: {s.replayed} replayed, {s.compared} compared, similarity mean {similarity}, "
        f"refusals +{s.refusals_gained}/-{s.refusals_lost}, errors {s.errors_shadow}, "
        f"p50 {s.latency_p50_original_ms:.0f} → {s.latency_p50_shadow_ms:.0f} ms, "
        f"tokens out {s.tokens_out_original} → {s.tokens_out_shadow}"
    )
    print("wrote " + ", ".join(str(p) for p in written))  # noqa: T201


async def _replay(core: CoreSettings, args: argparse.Namespace, candidate: Candidate, window: TimeWindow) -> int:
    registry, error = _model_check(core, candidate)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    model = candidate.model

    def allowed(env: Envelope) -> bool:
        # The tenant's model allowance, as inference would apply it: refused ones are not sent at all.
        return registry is None or model is None or registry.get(model).allows(env.tenant)

    selection = select_requests(
        await read_requests(core, window), tenant=args.tenant, limit=args.limit, allowed=allowed
    )
    originals = selection.requests
    print(f"{len(originals)} recorded requests to replay as {candidate.label}", file=sys.stderr)  # noqa: T201
    results: list[ShadowResult] = []
    if originals:
        async with LlmopsClient(core, reply_to=core.topics.shadow_responses) as client:
            with tqdm(total=len(originals), unit="req", desc="replay", file=sys.stderr, dynamic_ncols=True) as bar:
                replayer = Replayer(client, concurrency=args.concurrency, timeout=args.timeout)
                results = await replayer.replay(originals, candidate, on_result=lambda _r: bar.update(1))
    answers = await read_answers(core, originals, window)
    embedder = Embedder()
    report = build_comparison(
        pair_answers(originals, results, answers),
        embed=embedder.embed,
        candidate=candidate.label,
        window=window,
        skipped=dict(selection.skipped),
    )
    _print_summary(report, write_comparison(report, args.out))
    return 0


def run(core: CoreSettings, args: argparse.Namespace) -> int:
    """Run ``llmops replay``; returns the exit status (2: bad arguments, 1: the broker failed)."""
    try:
        candidate = parse_candidate(args.candidate)
        window = TimeWindow.parse(args.since, args.until)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if args.bootstrap:
        core = core.model_copy(update={"kafka": core.kafka.model_copy(update={"bootstrap": args.bootstrap})})
    try:
        return asyncio.run(_replay(core, args, candidate, window))
    except _RUN_ERRORS as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
