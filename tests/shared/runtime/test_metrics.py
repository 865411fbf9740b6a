"""Tests for the per-stage Prometheus metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.contracts.envelope import CacheHit, CacheInfo, Chunk, Completion, Finding, Response, Safety
from shared.runtime.metrics import METRIC_NAMES, StageMetrics
from tests.conftest import make_envelope
from tests.shared.cache.helpers import checked, finished


def _value(metrics: StageMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


class TestStageMetrics:
    def test_outcomes_and_dead_letters(self) -> None:
        """Every message counts by outcome; failures also count as dead-lettered."""
        m = StageMetrics("preprocess")
        m.observe_message("ok", 0.003)
        m.observe_message("poison", 0.001)
        assert _value(m, "llmops_stage_messages_total", stage="preprocess", outcome="ok") == 1
        assert _value(m, "llmops_dlq_messages_total", stage="preprocess", code="poison") == 1
        assert _value(m, "llmops_dlq_messages_total", stage="preprocess", code="ok") == 0
        assert _value(m, "llmops_stage_duration_seconds_count", stage="preprocess") == 2

    def test_safety_verdicts_by_check(self) -> None:
        """Safety counts its verdict once per check that fired."""
        m = StageMetrics("safety")
        env = make_envelope()
        env.safety = Safety(verdict="redact", findings=[Finding(check="pii.email", start=0, end=3, action="redact")])
        m.observe_envelope(env)
        assert _value(m, "llmops_safety_verdicts_total", stage="safety", verdict="redact", check="pii.email") == 1

    def test_safety_cache_lookups_by_result(self) -> None:
        """Safety counts each cache lookup as a hit or a miss, per model; requests not looked up are not counted."""
        m = StageMetrics("safety")
        hit = CacheHit(request_id="r0", similarity=0.97, text="Paris.", model="m")
        for cache in (CacheInfo(key="k"), CacheInfo(key="k", hit=hit), None):
            env = checked()
            env.cache = cache
            m.observe_envelope(env)
        assert _value(m, "llmops_cache_lookups_total", model="gemma-3-270m", result="miss") == 1
        assert _value(m, "llmops_cache_lookups_total", model="gemma-3-270m", result="hit") == 1

    def test_inference_tokens_and_speed(self) -> None:
        """Inference counts tokens both ways, speed, time to first token and GPU layers."""
        m = StageMetrics("inference")
        env = make_envelope()
        env.completion = Completion(
            text="hi",
            model="m",
            tokens_in=12,
            tokens_out=3,
            time_to_first_token_ms=50.0,
            tokens_per_s=20.0,
            gpu_layers=7,
        )
        m.observe_envelope(env)
        assert _value(m, "llmops_tokens_total", model="m", direction="prompt", traffic="live") == 12
        assert _value(m, "llmops_tokens_total", model="m", direction="completion", traffic="live") == 3
        assert _value(m, "llmops_time_to_first_token_seconds_sum", model="m") == 0.05
        assert _value(m, "llmops_gpu_layers", model="m") == 7
        assert _value(m, "llmops_shadow_messages_total", stage="inference") == 0

    def test_shadow_traffic_is_labelled(self) -> None:
        """A shadow request's output counts as shadow, and its tokens carry traffic="shadow"."""
        m = StageMetrics("inference")
        env = make_envelope()
        env.require_request().metadata["shadow"] = "replay"
        env.completion = Completion(text="hi", model="m", tokens_in=5, tokens_out=2)
        m.observe_envelope(env)
        assert _value(m, "llmops_shadow_messages_total", stage="inference") == 1
        assert _value(m, "llmops_tokens_total", model="m", direction="completion", traffic="shadow") == 2
        assert _value(m, "llmops_tokens_total", model="m", direction="completion", traffic="live") == 0

    def test_lag_and_exposition(self) -> None:
        """Lag is per partition and summed for readiness; the exposition names every contract metric."""
        m = StageMetrics("grounding")
        m.set_lag("llmops.preprocessed", 0, 5)
        m.set_lag("llmops.preprocessed", 1, -2)
        assert m.total_lag() == 5
        text, content_type = m.render()
        assert content_type.startswith("text/plain")
        for name in ("llmops_consumer_lag", "llmops_stage_messages", "llmops_tokens"):
            assert name.encode() in text
        assert all(n.startswith("llmops_") for n in METRIC_NAMES)


class TestAnswerMetrics:
    def test_final_answers_by_alias_model_and_outcome(self) -> None:
        """Postprocess counts each final answer and its latency under the alias asked for and the model that served it."""
        m = StageMetrics("postprocess")
        for alias, refused in (("chat", False), ("chat", True), (None, False)):
            env = finished(checked())
            assert env.prepared is not None
            env.prepared.alias = alias
            env.created_at = datetime.now(UTC) - timedelta(seconds=1.5)
            env.response = Response(text="Paris.", refused=refused)
            m.observe_envelope(env)
        model = "gemma-3-270m"
        assert _value(m, "llmops_answers_total", alias="chat", model=model, outcome="answered") == 1
        assert _value(m, "llmops_answers_total", alias="chat", model=model, outcome="refused") == 1
        assert _value(m, "llmops_answers_total", alias="", model=model, outcome="answered") == 1
        assert _value(m, "llmops_answer_latency_seconds_count", alias="chat", model=model) == 2
        assert 3.0 <= _value(m, "llmops_answer_latency_seconds_sum", alias="chat", model=model) < 4.0

    def test_other_stages_and_chunks_are_not_answers(self) -> None:
        """Only postprocess's final answers count (not its streamed pieces, not another stage's output)."""
        m, other = StageMetrics("postprocess"), StageMetrics("inference")
        chunk = finished(checked()).model_copy(update={"kind": "chunk", "chunk": Chunk(seq=0, text="Pa")})
        m.observe_envelope(chunk)
        other.observe_envelope(finished(checked()))
        for metrics in (m, other):
            assert not any(s.value for f in metrics.answers.collect() for s in f.samples)
