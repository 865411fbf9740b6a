"""Running a service's main coroutine: on uvloop unless ``LLMOPS_EVENT_LOOP=asyncio``.

uvloop's event loop costs less per wake-up than asyncio's, which matters to a stage that
polls the broker every few milliseconds (see docs/performance.md for the measured effect).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from shared.runtime.settings import CoreSettings

__all__ = ["exit_code", "loop_factory", "run", "serve"]

T = TypeVar("T")


def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory ``choice`` names (default: the ``LLMOPS_EVENT_LOOP`` setting, uvloop).

    ``uvloop`` falls back to asyncio's loop where uvloop is not installed; ``asyncio``
    returns None (asyncio's default). Anything else is refused.
    """
    name = (choice if choice is not None else CoreSettings().event_loop).strip().lower()
    if name == "asyncio":
        return None
    if name != "uvloop":
        msg = f"LLMOPS_EVENT_LOOP must be 'uvloop' or 'asyncio', not {name!r}"
        raise ValueError(msg)
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:  # pragma: no cover - uvloop is a dependency; other platforms may lack it
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], *, choice: str | None = None) -> T:
    """``asyncio.run(main)`` on the configured event loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)


def exit_code(exc: SystemExit) -> int:
    """The process status a ``SystemExit`` stands for (``sys.exit`` semantics)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # noqa: T201 - sys.exit("message") prints it too
    return 1


def serve(main: Coroutine[Any, Any, object], *, choice: str | None = None) -> NoReturn:
    """Run a service's main coroutine, then end the process without the interpreter's teardown.

    When ``main`` returns, the service has drained its handlers and closed its clients. What is left
    is Python's finalization: collecting every object of torch, spaCy and llama.cpp one by one,
    4-5 s of CPU per service on a quiet 2-core machine and many times that on a loaded one (CI's
    `llmops up --broker kafka` took over 60 s to stop, five services finalizing at once). The
    ``atexit`` handlers still run (log handlers, telemetry exporters flush), then ``os._exit``.
    A ``SystemExit`` keeps its status; an uncaught exception prints its traceback and exits 1.
    """
    try:
        result = run(main, choice=choice)
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    except SystemExit as exc:
        code = exit_code(exc)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - printed, then the process ends with status 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - what a normal exit runs first, without the teardown after it
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
