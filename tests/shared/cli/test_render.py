from datetime import UTC, datetime, timedelta

from shared.cli.render import format_answer, format_timings
from shared.contracts.envelope import ErrorInfo, Response, TrailRecord
from tests.conftest import make_envelope


class TestRender:
    def test_timings_line_lists_each_stage(self) -> None:
        """Each stage's duration and the end-to-end time are shown."""
        env = make_envelope()
        start = env.created_at
        env.trail = [
            TrailRecord(
                stage="preprocess",
                replica="p",
                started_at=start + timedelta(milliseconds=5),
                duration_ms=2.0,
                outcome="ok",
            ),
            TrailRecord(
                stage="postprocess",
                replica="q",
                started_at=start + timedelta(milliseconds=50),
                duration_ms=3.0,
                outcome="ok",
            ),
        ]
        assert format_timings(env) == "preprocess 2.0 ms · postprocess 3.0 ms · end-to-end 53 ms"

    def test_answer_or_error(self) -> None:
        """The response text, or the error with its code and stage."""
        env = make_envelope()
        env.response = Response(text="Paris.")
        assert format_answer(env) == "Paris."
        env.error = ErrorInfo(code="prompt_too_long", message="too long", stage="preprocess")
        assert format_answer(env) == "error [prompt_too_long] from preprocess: too long"
        assert datetime.now(UTC) >= env.created_at
