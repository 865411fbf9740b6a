"""``llmops eval run SUITE.yaml`` and ``llmops eval report RESULTS...``: golden-set evaluation of the pipeline.

``run`` starts the embedded stack (broker on a free port, the five services, a fresh knowledge
store in the output folder) unless ``--bootstrap`` names a running pipeline, ingests the suite's
knowledge, asks every case under every configuration, and writes ``results.jsonl`` and the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tqdm import tqdm

from shared.cli.ingest import run_ingest
from shared.client import BROKER_ERRORS, LlmopsClient
from shared.eval.report import Report, build_report, write_report
from shared.eval.results import EvalResult, read_results
from shared.eval.suite import Suite, SuiteError, load_suite
from shared.eval.suite_runner import SuiteRunner
from shared.knowledge.settings import KnowledgeSettings
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import EmbeddedStack, free_port

__all__ = ["add_parser", "run"]

#: What ends a run with one line instead of a traceback: no broker, a stack that would not start.
_RUN_ERRORS: tuple[type[Exception], ...] = (*BROKER_ERRORS, RuntimeError, TimeoutError)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``llmops eval run`` and ``llmops eval report``."""
    evaluate = sub.add_parser("eval", help="run an evaluation suite through the pipeline; report on results")
    actions = evaluate.add_subparsers(dest="eval_command", required=True)

    run_ = actions.add_parser("run", help="run a suite (YAML) and write results.jsonl and the report")
    run_.add_argument("suite", type=Path)
    run_.add_argument("--bootstrap", metavar="HOST:PORT", help="a running pipeline's broker (default: start one)")
    run_.add_argument("--out", type=Path, default=Path("eval-out"), help="output folder (default: eval-out)")
    run_.add_argument("--config", action="append", default=[], metavar="NAME", help="only these configurations")
    run_.add_argument("--case", action="append", default=[], metavar="ID", help="only these cases")
    run_.add_argument("--concurrency", type=int, default=2, help="cases in flight at once (default: 2)")
    run_.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each answer")
    run_.add_argument("--no-ingest", action="store_true", help="skip the suite's knowledge (already ingested)")
    run_.add_argument("--min-pass-rate", type=float, default=0.0, help="exit 1 when a configuration passes less")

    report = actions.add_parser("report", help="Markdown, JSON and a PNG chart from results files")
    report.add_argument(
        "results",
        nargs="+",
        metavar="[LABEL=]RESULTS",
        help="results.jsonl files; a LABEL prefixes its configurations (to compare runs of the same ones)",
    )
    report.add_argument("--out", type=Path, default=Path("eval-out"), help="output folder (default: eval-out)")
    report.add_argument(
        "--by-model",
        action="store_true",
        help="split each configuration by the model that answered (an alias's variants side by side)",
    )


@contextlib.asynccontextmanager
async def _pipeline(core: CoreSettings, args: argparse.Namespace) -> AsyncIterator[CoreSettings]:
    """A running pipeline: the given broker's, or an embedded stack started (and stopped) here."""
    if args.bootstrap:
        yield core.model_copy(update={"kafka": core.kafka.model_copy(update={"bootstrap": args.bootstrap})})
        return
    core = core.model_copy(update={"kafka": core.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})})
    extra_env = {}
    if KnowledgeSettings().local:
        # A fresh store for this run: the suite's knowledge only, and no clash with a running `llmops up`.
        qdrant = (args.out / "qdrant").resolve()
        extra_env["LLMOPS_QDRANT_PATH"] = str(qdrant)
        os.environ["LLMOPS_QDRANT_PATH"] = str(qdrant)  # `run_ingest` in this process reads it
    stack = EmbeddedStack(core, log_dir=(args.out / "logs").resolve(), extra_env=extra_env)
    print(f"starting the pipeline on {core.kafka.bootstrap} (logs in {stack.log_dir}) ...", file=sys.stderr)  # noqa: T201
    try:
        await stack.start(timeout=300)
        yield core
    finally:
        await asyncio.to_thread(stack.stop)


async def _ingest(core: CoreSettings, suite: Suite, timeout: float) -> int:
    for source in suite.knowledge:
        args = argparse.Namespace(paths=source.paths, tenant=source.tenant, delete=[], timeout=timeout)
        status = await run_ingest(core, args)
        if status != 0:
            return status
    return 0


def _print_summary(report: Report, written: list[Path]) -> None:
    for config in report.configurations:
        print(  # noqa: T201
            f"{config.name}: {config.cases.passed}/{config.cases.total} passed ({config.cases.rate:.0%}), "
            f"p50 {config.latency_p50_ms:.0f} ms, p95 {config.latency_p95_ms:.0f} ms, {config.tokens_out} tokens out"
        )
    if report.changed:
        print(f"{len(report.changed)} cases changed between configurations")  # noqa: T201
    print("wrote " + ", ".join(str(p) for p in written))  # noqa: T201


async def _run(core: CoreSettings, args: argparse.Namespace) -> int:
    try:
        suite = load_suite(args.suite).select(args.config or None, args.case or None)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        results = await _run_suite(core, args, suite)
    except _RUN_ERRORS as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    if results is None:
        return 1
    report = build_report(results)
    _print_summary(report, [args.out / "results.jsonl", *write_report(report, args.out)])
    return 1 if any(c.cases.rate < args.min_pass_rate for c in report.configurations) else 0


async def _run_suite(core: CoreSettings, args: argparse.Namespace, suite: Suite) -> list[EvalResult] | None:
    """Ingest the suite's knowledge and run its cases; ``None`` when ingestion failed."""
    results_path = args.out / "results.jsonl"
    total = len(suite.configurations) * len(suite.cases)
    async with _pipeline(core, args) as running:
        if not args.no_ingest and await _ingest(running, suite, args.timeout) != 0:
            return None
        # Cases are shadow requests: their answers (refusals too) come on the reserved shadow topic.
        client = LlmopsClient(running, reply_to=running.topics.shadow_responses)
        try:
            await client.start()  # before the progress bar: an unreachable broker fails here
            with (
                results_path.open("w") as sink,
                tqdm(total=total, unit="case", desc=f"eval {suite.name}", file=sys.stderr, dynamic_ncols=True) as bar,
            ):
                failed = 0

                def record(result: EvalResult) -> None:
                    nonlocal failed
                    failed += not result.passed
                    sink.write(result.model_dump_json() + "\n")
                    sink.flush()
                    bar.update(1)
                    bar.set_postfix(config=result.configuration, failed=failed)

                runner = SuiteRunner(client, concurrency=args.concurrency, timeout=args.timeout)
                return await runner.run(suite, on_result=record)
        finally:
            await client.stop()


def _labelled(item: str) -> tuple[str | None, Path]:
    label, sep, path = item.partition("=")
    return (label, Path(path)) if sep and label and not Path(item).exists() else (None, Path(item))


def _report(args: argparse.Namespace) -> int:
    sources = [_labelled(item) for item in args.results]
    missing = [str(path) for _, path in sources if not path.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)  # noqa: T201
        return 2
    records = []
    for label, path in sources:
        for record in read_results([path]):
            if label:
                record.configuration = f"{label}/{record.configuration}"
            if getattr(args, "by_model", False):
                record.configuration = f"{record.configuration}/{record.outcome.model or 'no model'}"
            records.append(record)
    report = build_report(records)
    _print_summary(report, write_report(report, args.out))
    return 0


def run(core: CoreSettings, args: argparse.Namespace) -> int:
    """Run ``llmops eval run`` or ``llmops eval report``; returns the exit status."""
    if args.eval_command == "report":
        return _report(args)
    return asyncio.run(_run(core, args))
