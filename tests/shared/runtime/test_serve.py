"""The event loop a service runs on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
import uvloop

from shared.runtime.serve import loop_factory, run

EVENT_LOOP_ENV = "LLMOPS_EVENT_LOOP"


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_services_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert issubclass(run(_loop_type()), uvloop.Loop)


def test_asyncio_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, "asyncio")
    assert loop_factory() is None
    assert not issubclass(run(_loop_type()), uvloop.Loop)


def test_the_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, "asyncio")
    assert issubclass(run(_loop_type(), choice="uvloop"), uvloop.Loop)


def test_unknown_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="uvloop' or 'asyncio'"):
        loop_factory("trio")


def _serve(body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        """
        import atexit, sys
        from shared.runtime.serve import serve
        atexit.register(lambda: print("atexit ran", flush=True))
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)


class TestServe:
    def test_the_coroutines_status_and_atexit_handlers(self) -> None:
        done = _serve(
            """
            async def main() -> int:
                print("served", flush=True)
                return 3
            serve(main())
            """
        )
        assert done.returncode == 3
        assert done.stdout.splitlines() == ["served", "atexit ran"]

    def test_system_exit_keeps_its_status(self) -> None:
        done = _serve(
            """
            async def main() -> None:
                raise SystemExit(2)
            serve(main())
            """
        )
        assert (done.returncode, done.stdout.strip()) == (2, "atexit ran")

    def test_a_crash_prints_its_traceback_and_exits_1(self) -> None:
        done = _serve(
            """
            async def main() -> None:
                raise RuntimeError("boom")
            serve(main())
            """
        )
        assert done.returncode == 1
        assert "RuntimeError: boom" in done.stderr
        assert done.stdout.strip() == "atexit ran"

    def test_no_teardown_after_the_service_returns(self) -> None:
        """An object whose finalizer would run at interpreter teardown is never finalized: the process ends first."""
        done = _serve(
            """
            class Heavy:
                def __del__(self) -> None:
                    print("finalized", flush=True)
            keep = Heavy()
            async def main() -> None:
                return None
            serve(main())
            """
        )
        assert done.returncode == 0
        assert "finalized" not in done.stdout
