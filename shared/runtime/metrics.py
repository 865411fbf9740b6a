"""Prometheus metrics every stage exposes on ``GET /metrics`` (its health port).

Names are a contract with the Grafana dashboard and the KEDA/Prometheus files in
``infra/``: change them together. Counters are fed from two places only: the service
wrapper around ``StageRunner.handle`` (outcome and duration of every message) and
``observe_envelope`` on every output (verdicts, cache lookups, tokens, time to first token,
and each final answer by the alias and model that served it, so canary variants compare).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shared.contracts.envelope import Envelope
from shared.contracts.shadow import is_shadow, traffic

__all__ = ["METRIC_NAMES", "StageMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TPS_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 200, 400)
_ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)

METRIC_NAMES = (
    "llmops_stage_messages_total",
    "llmops_stage_duration_seconds",
    "llmops_dlq_messages_total",
    "llmops_safety_verdicts_total",
    "llmops_tokens_total",
    "llmops_tokens_per_second",
    "llmops_time_to_first_token_seconds",
    "llmops_consumer_lag",
    "llmops_gpu_layers",
    "llmops_cache_lookups_total",
    "llmops_shadow_messages_total",
    "llmops_answers_total",
    "llmops_answer_latency_seconds",
)


class StageMetrics:
    """The metrics of one stage process, in their own registry (tests may build several per process).

    Example:
        >>> metrics = StageMetrics("safety")
        >>> metrics.observe_message("ok", 0.004)
        >>> b"llmops_stage_messages_total" in metrics.render()[0]
        True

    """

    def __init__(self, stage: str, registry: CollectorRegistry | None = None) -> None:
        self.stage = stage
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "llmops_stage_messages",
            "Messages handled, by outcome (ok, an error code, poison).",
            ["stage", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "llmops_stage_duration_seconds",
            "Time a stage spends on one message.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.dead_lettered = Counter(
            "llmops_dlq_messages", "Messages sent to the dead-letter topic.", ["stage", "code"], registry=r
        )
        self.verdicts = Counter(
            "llmops_safety_verdicts",
            "Safety verdicts and the checks behind them.",
            ["stage", "verdict", "check"],
            registry=r,
        )
        self.tokens = Counter(
            "llmops_tokens",
            "Tokens in and out of the model; traffic: live or shadow (replay, evaluation).",
            ["model", "direction", "traffic"],
            registry=r,
        )
        self.tokens_per_s = Histogram(
            "llmops_tokens_per_second", "Generation speed per request.", ["model"], buckets=_TPS_BUCKETS, registry=r
        )
        self.ttft = Histogram(
            "llmops_time_to_first_token_seconds",
            "Time to the first generated token.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "llmops_consumer_lag",
            "Messages behind the end of each input partition.",
            ["stage", "topic", "partition"],
            registry=r,
        )
        self.gpu_layers = Gauge("llmops_gpu_layers", "Model layers offloaded to the GPU.", ["model"], registry=r)
        self.cache_lookups = Counter(
            "llmops_cache_lookups", "Semantic cache lookups, by result (hit, miss).", ["model", "result"], registry=r
        )
        self.shadow_messages = Counter(
            "llmops_shadow_messages",
            "Outputs of shadow requests (replay, evaluation); also counted in llmops_stage_messages_total.",
            ["stage"],
            registry=r,
        )
        # Per variant: labels come from the registry (model, alias), never from the client, so they stay few.
        self.answers = Counter(
            "llmops_answers",
            "Final answers by the alias requested ('' for none), the model that served it, and outcome.",
            ["alias", "model", "outcome"],
            registry=r,
        )
        self.answer_latency = Histogram(
            "llmops_answer_latency_seconds",
            "From the request's creation to its final answer, by alias and model.",
            ["alias", "model"],
            buckets=_ANSWER_BUCKETS,
            registry=r,
        )
        self.lag_by_partition: dict[tuple[str, int], int] = {}

    def observe_message(self, outcome: str, seconds: float) -> None:
        """One message handled: its outcome and how long it took."""
        self.messages.labels(self.stage, outcome).inc()
        self.duration.labels(self.stage).observe(seconds)
        if outcome not in {"ok", "dropped"}:
            # Every failed or unreadable message is dead-lettered by the runner (DESIGN.md §3).
            self.dead_lettered.labels(self.stage, outcome).inc()

    def observe_envelope(self, env: Envelope) -> None:
        """Domain figures from a stage's output: verdicts and cache lookups (safety), tokens and speed (inference).

        Shadow outputs are counted apart too, and their tokens carry ``traffic="shadow"``.
        """
        if env.kind != "chunk" and is_shadow(env):
            self.shadow_messages.labels(self.stage).inc()
        if self.stage == "safety" and env.safety is not None:
            checks = sorted({f.check for f in env.safety.findings}) or ["none"]
            for check in checks:
                self.verdicts.labels(self.stage, env.safety.verdict, check).inc()
        if self.stage == "safety" and env.cache is not None and env.prepared is not None:
            self.cache_lookups.labels(env.prepared.model, "miss" if env.cache.hit is None else "hit").inc()
        if self.stage == "inference" and env.completion is not None and env.kind != "chunk":
            done = env.completion
            self.tokens.labels(done.model, "prompt", traffic(env)).inc(done.tokens_in)
            self.tokens.labels(done.model, "completion", traffic(env)).inc(done.tokens_out)
            if done.tokens_per_s:
                self.tokens_per_s.labels(done.model).observe(done.tokens_per_s)
            if done.time_to_first_token_ms is not None:
                self.ttft.labels(done.model).observe(done.time_to_first_token_ms / 1000)
            self.gpu_layers.labels(done.model).set(done.gpu_layers)
        if self.stage == "postprocess" and env.kind == "final" and env.prepared is not None:
            self._observe_answer(env, env.prepared.alias or "", env.prepared.model)

    def _observe_answer(self, env: Envelope, alias: str, model: str) -> None:
        response = env.response
        outcome = (
            "error"
            if env.error is not None or response is None
            else "refused"
            if response.refused
            else "cached"
            if response.cached
            else "answered"
        )
        self.answers.labels(alias, model, outcome).inc()
        self.answer_latency.labels(alias, model).observe(max(0.0, (datetime.now(UTC) - env.created_at).total_seconds()))

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        """Consumer lag of one input partition."""
        self.lag.labels(self.stage, topic, str(partition)).set(max(0, lag))
        self.lag_by_partition[topic, partition] = max(0, lag)

    def total_lag(self) -> int:
        """Messages waiting on all assigned input partitions (as last measured)."""
        return sum(self.lag_by_partition.values())

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
