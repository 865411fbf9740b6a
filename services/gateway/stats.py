"""Live pipeline statistics from the answers this gateway sees (no HTTP, no Kafka).

Every answer carries its trail, so the gateway knows each stage's latency without asking
the stages: the stats view is built from the answers of the last ``window_s`` seconds.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.contracts.envelope import Envelope

__all__ = ["PipelineStats"]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))], 3)


@dataclass
class _Sample:
    at: float
    status: int
    gateway_ms: float
    stages: dict[str, float] = field(default_factory=dict)
    ttft_ms: float | None = None
    tokens_out: int = 0
    tokens_per_s: float | None = None


class PipelineStats:
    """A sliding window of recent requests: rates, status counts, latency per stage.

    Example:
        >>> stats = PipelineStats(window_s=60)
        >>> stats.record(200, 12.5, answer)
        >>> stats.snapshot()["requests_per_s"]
        0.017

    """

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[_Sample] = deque()
        self._started = clock()

    def record(self, status: int, gateway_ms: float, answer: Envelope | None = None) -> None:
        """Count one finished HTTP request (``answer`` when the pipeline answered)."""
        sample = _Sample(self._clock(), status, gateway_ms)
        if answer is not None:
            sample.stages = {t.stage: t.duration_ms for t in answer.trail}
            if answer.completion is not None:
                sample.ttft_ms = answer.completion.time_to_first_token_ms
                sample.tokens_out = answer.completion.tokens_out
                sample.tokens_per_s = answer.completion.tokens_per_s
        self._samples.append(sample)
        self._trim(sample.at)

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0].at > self.window_s:
            self._samples.popleft()

    def snapshot(self) -> dict[str, Any]:
        """Rates and latency percentiles over the window."""
        now = self._clock()
        self._trim(now)
        samples = list(self._samples)
        span = max(1e-9, min(self.window_s, now - self._started))
        stages: dict[str, list[float]] = {}
        for s in samples:
            for stage, ms in s.stages.items():
                stages.setdefault(stage, []).append(ms)
        ttft = [s.ttft_ms for s in samples if s.ttft_ms is not None]
        tps = [s.tokens_per_s for s in samples if s.tokens_per_s is not None]
        return {
            "window_s": self.window_s,
            "requests": len(samples),
            "requests_per_s": round(len(samples) / span, 3),
            "answers_per_s": round(sum(1 for s in samples if s.stages) / span, 3),
            "tokens_out_per_s": round(sum(s.tokens_out for s in samples) / span, 3),
            "status": dict(Counter(str(s.status) for s in samples)),
            "latency_ms": {
                "gateway_p50": _pct([s.gateway_ms for s in samples], 50),
                "gateway_p95": _pct([s.gateway_ms for s in samples], 95),
                "time_to_first_token_p50": _pct(ttft, 50),
            },
            "tokens_per_s_p50": _pct(tps, 50),
            "stages": {
                stage: {"count": len(v), "p50_ms": _pct(v, 50), "p95_ms": _pct(v, 95), "max_ms": round(max(v), 3)}
                for stage, v in stages.items()
            },
        }
