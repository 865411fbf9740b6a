"""Prometheus metrics of the inference service, per worker process, on a port of its own.

Kept apart from the shared health server on purpose: the pipeline-wide metrics (issue 6)
can adopt these collectors; until then ``LLMOPS_INFERENCE_METRICS_PORT`` serves them
(worker ``i`` of ``--workers N`` on that port plus ``i``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from shared.contracts.envelope import Completion

__all__ = ["InferenceMetrics"]

_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TPS_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)


class InferenceMetrics:
    """Counters and histograms fed from each request's ``completion``.

    Example:
        >>> metrics = InferenceMetrics()
        >>> metrics.observe(envelope.completion)
        >>> metrics.serve("0.0.0.0", 9464)

    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.generations = Counter(
            "llmops_inference_generations",
            "Generations by model and finish reason.",
            ["model", "finish_reason"],
            registry=r,
        )
        self.prompt_tokens = Counter("llmops_inference_prompt_tokens", "Prompt tokens.", ["model"], registry=r)
        self.cached_tokens = Counter(
            "llmops_inference_cached_prompt_tokens", "Prompt tokens reused from the KV cache.", ["model"], registry=r
        )
        self.completion_tokens = Counter(
            "llmops_inference_completion_tokens", "Generated tokens.", ["model"], registry=r
        )
        self.ttft = Histogram(
            "llmops_inference_time_to_first_token_seconds",
            "Time to first token.",
            ["model"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.tokens_per_s = Histogram(
            "llmops_inference_tokens_per_second",
            "Decode speed per request.",
            ["model"],
            buckets=_TPS_BUCKETS,
            registry=r,
        )
        self.gpu_layers = Gauge("llmops_inference_gpu_layers", "Layers offloaded to the GPU.", ["model"], registry=r)

    def observe(self, completion: Completion) -> None:
        """Record one finished (or cut-off) generation."""
        model = completion.model
        self.generations.labels(model, completion.finish_reason or "unknown").inc()
        self.prompt_tokens.labels(model).inc(completion.tokens_in)
        self.cached_tokens.labels(model).inc(completion.cached_tokens)
        self.completion_tokens.labels(model).inc(completion.tokens_out)
        if completion.time_to_first_token_ms is not None:
            self.ttft.labels(model).observe(completion.time_to_first_token_ms / 1000)
        if completion.tokens_per_s is not None:
            self.tokens_per_s.labels(model).observe(completion.tokens_per_s)
        self.gpu_layers.labels(model).set(completion.gpu_layers)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` from a background thread."""
        start_http_server(port, addr=host, registry=self.registry)
