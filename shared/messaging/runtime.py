"""Running a service's main coroutine: on uvloop unless ``LLMOPS_EVENT_LOOP=asyncio``.

uvloop's event loop costs less per wake-up than asyncio's, which matters to a stage that
polls the broker every few milliseconds (see docs/performance.md for the measured effect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from shared.messaging.settings import CoreSettings

__all__ = ["loop_factory", "run"]

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
