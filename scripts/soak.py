"""``make soak``: the embedded stack under a steady request rate for a long time (not in CI).

The first ``--warm-up-s`` seconds of traffic fill what is bounded by design (the inference
prompt cache, tokenizer and allocator pools); then every ``--sample-s`` seconds it records
each service's resident memory (from /proc) and the consumer lag it reports on /metrics. At
the end it prints the memory growth of every service (last sample over the first one, taken
when the warm-up ends), the RSS over time, and the largest lag, and writes them to
``docs/reliability.md`` between markers. Guarantees checked: every request
answered exactly once, memory growth under 10 %, lag bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

from shared.client import LlmopsClient
from shared.messaging.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.embedded import EmbeddedStack, free_port

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- soak:start -->", "<!-- soak:end -->"


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else 0.0


async def lag_of(port: int) -> float:
    """Sum of llmops_consumer_lag reported by one service."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        body = (await reader.read()).decode(errors="replace")
        writer.close()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith("llmops_consumer_lag{"))


async def soak(minutes: float, rate: float, sample_s: float, model: str, warm_up_s: float) -> dict[str, object]:
    """Run the soak and return its figures."""
    scratch = Path(tempfile.mkdtemp(prefix="llmops-soak-"))
    core = CoreSettings(kafka=KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"), topics=TopicSettings())
    core.default_model = model
    # Own broker, knowledge folder and logs; the installed models.
    stack = EmbeddedStack(core, log_dir=scratch / "logs", extra_env={"LLMOPS_QDRANT_PATH": str(scratch / "qdrant")})
    await stack.start(timeout=300)
    samples: dict[str, list[float]] = {s.name: [] for s in stack.services}
    max_lag = 0.0
    sent = answered = errors = 0
    try:
        async with LlmopsClient(core) as client:
            pending: set[asyncio.Future[object]] = set()
            next_sample = time.monotonic() + warm_up_s  # first sample once the warm-up traffic is through
            t_end = next_sample + minutes * 60
            while time.monotonic() < t_end:
                env = client.build(f"Say the number {sent}.", max_tokens=8, timeout=120)
                pending.add(await client.send(env))  # type: ignore[arg-type]
                sent += 1
                done = {f for f in pending if f.done()}
                for fut in done:
                    answered += 1
                    errors += int(getattr(fut.result(), "error", None) is not None)
                pending -= done
                if time.monotonic() >= next_sample:
                    for svc in stack.services:
                        if svc.proc is not None:
                            samples[svc.name].append(rss_mb(svc.proc.pid))
                        max_lag = max(max_lag, await lag_of(svc.health_port))
                    next_sample += sample_s
                await asyncio.sleep(1 / rate)
            results = await asyncio.gather(*pending)
            answered += len(results)
            errors += sum(getattr(r, "error", None) is not None for r in results)
    finally:
        stack.stop()
    growth = {name: (s[-1] / s[0] - 1) * 100 for name, s in samples.items() if len(s) >= 2}  # noqa: PLR2004
    return {
        "minutes": minutes,
        "rate": rate,
        "sent": sent,
        "answered": answered,
        "errors": errors,
        "growth_pct": growth,
        "rss_mb": {n: s[-1] for n, s in samples.items() if s},
        "series_mb": samples,
        "warm_up_s": warm_up_s,
        "max_lag": max_lag,
    }


def write_doc(figures: dict[str, object]) -> None:
    """Put the figures into docs/reliability.md between the soak markers."""
    growth: dict[str, float] = figures["growth_pct"]  # type: ignore[assignment]
    rss: dict[str, float] = figures["rss_mb"]  # type: ignore[assignment]
    series: dict[str, list[float]] = figures["series_mb"]  # type: ignore[assignment]
    rows = "\n".join(
        f"| {n} | {' → '.join(f'{v:.0f}' for v in _quartiles(series[n]))} | {rss.get(n, 0):.0f} | {g:+.1f} % |"
        for n, g in sorted(growth.items())
    )
    block = (
        f"{START}\nSoak run of {figures['minutes']} min at {figures['rate']} requests/s after "
        f"{figures['warm_up_s']:.0f} s of warm-up traffic: sent {figures['sent']}, answered {figures['answered']}, "
        f"errors {figures['errors']}, largest summed consumer lag {figures['max_lag']:.0f}.\n\n"
        "| service | RSS at start → ¼ → ½ → ¾ → end (MiB) | RSS at end (MiB) | growth |\n|---|---|---|---|\n"
        f"{rows}\n{END}"
    )
    text = DOC.read_text(encoding="utf-8")
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), block, text, flags=re.DOTALL)
    DOC.write_text(text, encoding="utf-8")


def _quartiles(values: list[float]) -> list[float]:
    """The first, quarter, half, three-quarter and last samples."""
    last = len(values) - 1
    return [values[round(last * q / 4)] for q in range(5)] if values else []


def main(argv: list[str] | None = None) -> int:
    """Run, print, write; exit 1 when a guarantee does not hold."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--warm-up-s", type=float, default=120.0, help="traffic before the first memory sample")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/reliability.md alone")
    args = parser.parse_args(argv)
    figures = asyncio.run(soak(args.minutes, args.rate, args.sample_s, args.model, args.warm_up_s))
    print(figures)
    if not args.no_doc:
        write_doc(figures)
    growth: dict[str, float] = figures["growth_pct"]  # type: ignore[assignment]
    ok = figures["answered"] == figures["sent"] and all(g < 10 for g in growth.values())  # noqa: PLR2004
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
