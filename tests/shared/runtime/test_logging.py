import json

import pytest

from shared.runtime.logging import configure_logging, get_logger


class TestLogging:
    def test_json_lines_with_bound_context(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Off a TTY the output is JSON, with the bound fields and FastStream's extra lifted."""
        configure_logging("INFO", "json", replica="r-1")
        get_logger("t").info("message.done", extra={"topic": "llmops.requests"}, outcome="ok")
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["event"] == "message.done"
        assert (line["replica"], line["topic"], line["outcome"], line["level"]) == (
            "r-1",
            "llmops.requests",
            "ok",
            "info",
        )

    def test_level_filters(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Debug lines are dropped at INFO."""
        configure_logging("INFO", "json")
        get_logger("t").debug("noise")
        assert "noise" not in capsys.readouterr().err
