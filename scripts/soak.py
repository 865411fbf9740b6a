"""``make soak``: the embedded stack under a steady request rate for a long time (not in CI).

Warm-up traffic first fills what is bounded by design (the inference prompt cache, tokenizer
and allocator pools): at least ``--warm-up-s`` seconds, then until every service's memory has
been flat (within 1 %) for two minutes, at most ``--max-warm-up-s``. Then every ``--sample-s`` seconds it records
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
from collections import Counter
from pathlib import Path

from shared.client import LlmopsClient
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
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


def settled(history: dict[str, list[float]], window: int, tolerance: float) -> bool:
    """Whether every service's last ``window`` RSS samples lie within ``tolerance`` of each other."""
    return all(len(h) >= window and max(h[-window:]) <= min(h[-window:]) * (1 + tolerance) for h in history.values())


class _Traffic:
    """Sends one request every 1/rate s and counts the answers and their error codes."""

    def __init__(self, client: LlmopsClient, rate: float) -> None:
        self.client = client
        self.rate = rate
        self.pending: set[asyncio.Future[object]] = set()
        self.sent = self.answered = 0
        self.errors: Counter[str] = Counter()

    def _count(self, answer: object) -> None:
        self.answered += 1
        error = getattr(answer, "error", None)
        if error is not None:
            self.errors[error.code] += 1

    async def tick(self) -> None:
        env = self.client.build(f"Say the number {self.sent}.", max_tokens=8, timeout=120)
        self.pending.add(await self.client.send(env))  # type: ignore[arg-type]
        self.sent += 1
        done = {f for f in self.pending if f.done()}
        for fut in done:
            self._count(fut.result())
        self.pending -= done
        await asyncio.sleep(1 / self.rate)

    async def drain(self) -> None:
        for answer in await asyncio.gather(*self.pending):
            self._count(answer)


async def soak(
    minutes: float, rate: float, *, sample_s: float, model: str, warm_up_s: float, max_warm_up_s: float
) -> dict[str, object]:
    """Warm up until memory settles (bounded caches full), then measure ``minutes`` of steady traffic."""
    scratch = Path(tempfile.mkdtemp(prefix="llmops-soak-"))
    core = CoreSettings(kafka=KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"), topics=TopicSettings())
    core.default_model = model
    # Own broker, knowledge folder and logs; the installed models.
    stack = EmbeddedStack(core, log_dir=scratch / "logs", extra_env={"LLMOPS_QDRANT_PATH": str(scratch / "qdrant")})
    await stack.start(timeout=300)
    services = [svc for svc in stack.services if svc.proc is not None]
    warm: dict[str, list[float]] = {svc.name: [] for svc in services}
    samples: dict[str, list[float]] = {svc.name: [] for svc in services}
    max_lag = 0.0
    try:
        async with LlmopsClient(core) as client:
            traffic = _Traffic(client, rate)
            started = time.monotonic()
            next_sample = started + sample_s
            # Warm-up: at least warm_up_s, then until every RSS is flat for 2 minutes (or max_warm_up_s).
            while True:
                await traffic.tick()
                if time.monotonic() < next_sample:
                    continue
                next_sample += sample_s
                for svc in services:
                    warm[svc.name].append(rss_mb(svc.proc.pid))  # type: ignore[union-attr]
                elapsed = time.monotonic() - started
                window = max(2, round(120 / sample_s))
                if elapsed >= max_warm_up_s or (elapsed >= warm_up_s and settled(warm, window, 0.01)):
                    break
            warmed_s = time.monotonic() - started
            t_end = time.monotonic() + minutes * 60
            next_sample = time.monotonic()
            while time.monotonic() < t_end:
                if time.monotonic() >= next_sample:
                    for svc in services:
                        samples[svc.name].append(rss_mb(svc.proc.pid))  # type: ignore[union-attr]
                        max_lag = max(max_lag, await lag_of(svc.health_port))
                    next_sample += sample_s
                await traffic.tick()
            await traffic.drain()
    finally:
        stack.stop()
    growth = {name: (s[-1] / s[0] - 1) * 100 for name, s in samples.items() if len(s) >= 2}  # noqa: PLR2004
    return {
        "minutes": minutes,
        "rate": rate,
        "sent": traffic.sent,
        "answered": traffic.answered,
        "errors": sum(traffic.errors.values()),
        "error_codes": dict(traffic.errors),
        "growth_pct": growth,
        "rss_mb": {n: s[-1] for n, s in samples.items() if s},
        "series_mb": samples,
        "warm_up_series_mb": warm,
        "warm_up_s": warmed_s,
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
        f"{figures['warm_up_s']:.0f} s of warm-up traffic (until every service's memory was flat for 2 min): "
        f"sent {figures['sent']}, answered {figures['answered']}, errors {figures['errors']} "
        f"{figures['error_codes'] or ''}, largest summed consumer lag {figures['max_lag']:.0f}.\n\n"
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
    parser.add_argument("--warm-up-s", type=float, default=120.0, help="least warm-up traffic before measuring")
    parser.add_argument(
        "--max-warm-up-s", type=float, default=1200.0, help="most warm-up: measuring starts even if memory still grows"
    )
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/reliability.md alone")
    args = parser.parse_args(argv)
    figures = asyncio.run(
        soak(
            args.minutes,
            args.rate,
            sample_s=args.sample_s,
            model=args.model,
            warm_up_s=args.warm_up_s,
            max_warm_up_s=args.max_warm_up_s,
        )
    )
    print(figures)
    if not args.no_doc:
        write_doc(figures)
    growth: dict[str, float] = figures["growth_pct"]  # type: ignore[assignment]
    ok = figures["answered"] == figures["sent"] and all(g < 10 for g in growth.values())  # noqa: PLR2004
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
