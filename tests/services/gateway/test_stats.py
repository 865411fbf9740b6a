from services.gateway.stats import PipelineStats
from tests.services.gateway.test_protocol import _answer


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestPipelineStats:
    def test_rates_and_stage_latency_over_the_window(self) -> None:
        """Requests per second, status counts and per-stage percentiles come from the window's answers."""
        clock = _Clock()
        stats = PipelineStats(window_s=10, clock=clock)
        clock.now = 10.0
        stats.record(200, 50.0, _answer())
        stats.record(401, 0.2)
        snap = stats.snapshot()
        assert snap["requests"] == 2
        assert snap["requests_per_s"] == 0.2
        assert snap["answers_per_s"] == 0.1
        assert snap["status"] == {"200": 1, "401": 1}
        assert snap["stages"]["inference"]["p50_ms"] == 40.0
        assert snap["tokens_out_per_s"] == 0.3

    def test_old_requests_leave_the_window(self) -> None:
        """Samples older than the window are dropped."""
        clock = _Clock()
        stats = PipelineStats(window_s=5, clock=clock)
        stats.record(200, 1.0, _answer())
        clock.now = 6.0
        assert stats.snapshot()["requests"] == 0
        assert stats.snapshot()["stages"] == {}
