"""The event loop a service runs on."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from shared.messaging.runtime import loop_factory, run

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
