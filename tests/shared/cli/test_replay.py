"""Tests for `llmops replay`'s command line: what stops it before it touches the broker, and an unreachable one."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli.main import main
from shared.stack.embedded import free_port


class TestReplayCommand:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--since", "2h", "--candidate", "temperature=1"], "unknown candidate key"),
            (["--since", "2h", "--candidate", ""], "names nothing"),
            (["--since", "soon", "--candidate", "model=gemma-3-270m"], "ISO time"),
            (["--since", "1h", "--until", "2h", "--candidate", "model=gemma-3-270m"], "not after"),
            (["--since", "2h", "--candidate", "model=no-such-model"], "no-such-model"),
        ],
    )
    def test_bad_arguments_exit_2(
        self, args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad candidate, window or model is one error line and exit status 2."""
        bootstrap = f"127.0.0.1:{free_port()}"  # never reached
        assert main(["replay", *args, "--bootstrap", bootstrap, "--out", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err

    def test_unreachable_broker_exits_1(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No broker at --bootstrap: one error line, exit status 1, nothing written."""
        bootstrap = f"127.0.0.1:{free_port()}"
        args = ["replay", "--since", "1h", "--candidate", "template=concise@1", "--bootstrap", bootstrap]
        assert main([*args, "--out", str(tmp_path / "out")]) == 1
        assert capsys.readouterr().err.startswith("error: ")
        assert not (tmp_path / "out").exists()
