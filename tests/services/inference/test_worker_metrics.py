from services.inference.worker_metrics import InferenceMetrics
from shared.contracts.envelope import Completion


class TestInferenceMetrics:
    def test_completion_feeds_counters_and_histograms(self) -> None:
        """Tokens in/out/cached, finish reason, TTFT, speed and GPU layers are recorded per model."""
        metrics = InferenceMetrics()
        done = Completion(
            text="x",
            model="m",
            tokens_in=30,
            tokens_out=12,
            finish_reason="length",
            time_to_first_token_ms=250.0,
            tokens_per_s=40.0,
            gpu_layers=18,
            cached_tokens=20,
        )
        metrics.observe(done)
        metrics.observe(done.model_copy(update={"finish_reason": "timeout"}))
        value = metrics.registry.get_sample_value
        assert value("llmops_inference_generations_total", {"model": "m", "finish_reason": "length"}) == 1
        assert value("llmops_inference_generations_total", {"model": "m", "finish_reason": "timeout"}) == 1
        assert value("llmops_inference_prompt_tokens_total", {"model": "m"}) == 60
        assert value("llmops_inference_cached_prompt_tokens_total", {"model": "m"}) == 40
        assert value("llmops_inference_completion_tokens_total", {"model": "m"}) == 24
        assert value("llmops_inference_time_to_first_token_seconds_bucket", {"model": "m", "le": "0.25"}) == 2
        assert value("llmops_inference_tokens_per_second_count", {"model": "m"}) == 2
        assert value("llmops_inference_gpu_layers", {"model": "m"}) == 18
