"""The shape of every stage's logic: a cheap constructor, ``warm_up``, and ``process`` over a batch.

``process`` returns, for each input envelope, its outputs as (role, message) pairs, or the
exception that failed it. The runner (``shared.runtime.runner``) publishes every output in
order, each acknowledged before the next, with the pipeline's retries, ordering and commit rule;
the stage never calls the broker. Single-message stages are batches of one.

Example:
    >>> class Upper(Stage):
    ...     name = "preprocess"
    ...     async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
    ...         return [[Output.of(Role.PREPROCESSED, env)] for env in batch]

"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel

from shared.contracts.envelope import Envelope
from shared.contracts.topology import Role, StageSpec, spec_for
from shared.runtime.records import ReceivedRecord, parse_envelope

__all__ = ["Delivery", "Output", "Outputs", "SideHandler", "Stage", "StageContext", "each"]

T = TypeVar("T")


@dataclass(frozen=True)
class Output:
    """One message a stage publishes for an input: on the topic of ``role``, keyed by ``key``.

    An envelope's key is its conversation id (one conversation stays on one partition); a side
    record (turn, usage, cache entry) names its own.
    """

    role: Role
    message: BaseModel
    key: str = ""
    request_id: str | None = None
    #: What to publish (on the same role) when a later output of the same input fails before its final answer
    #: is out, so the input is answered with an error: a turn is retracted, for one (``Turn.retracted``).
    undo: BaseModel | None = None

    @classmethod
    def of(cls, role: Role, env: Envelope) -> Output:
        """An envelope output, keyed by its conversation."""
        return cls(role, env, env.conversation_id, env.request_id)

    @classmethod
    def record(
        cls, role: Role, message: BaseModel, *, key: str, request_id: str | None = None, undo: BaseModel | None = None
    ) -> Output:
        """A side record (not an envelope) with its own key; ``undo`` takes it back if the answer fails."""
        return cls(role, message, key, request_id, undo)

    @property
    def envelope(self) -> Envelope | None:
        """The message when it is an envelope."""
        return self.message if isinstance(self.message, Envelope) else None


#: One input's outputs, published in this order.
Outputs = list[Output]


@dataclass(frozen=True)
class Delivery:
    """How the stage's input is consumed.

    ``one``: a record at a time. ``batch``: whatever one poll returned (up to ``max_records``), processed
    together and committed together. ``concurrent``: up to ``max_records`` records in flight at once, each
    started as it arrives (inference's batched decoding), committed up to the lowest unfinished.
    """

    mode: Literal["one", "batch", "concurrent"] = "one"
    max_records: int = 1
    batch_timeout_ms: int = 5


@dataclass(frozen=True)
class SideHandler:
    """The handler of one declared side input (``StageSpec.side_inputs``): a valid ``model`` in, outputs out."""

    role: Role
    model: type[BaseModel]
    handle: Callable[[Any], Awaitable[Outputs]]
    #: How a record that is not a valid ``model`` is named in its DLQ record ("turn", "cache entry").
    what: str
    #: A request may need the record within milliseconds (a conversation's last turn): poll with a short wait.
    request_path: bool = False


class StageContext(Protocol):
    """What the service gives a stage at warm-up."""

    async def emit(self, output: Output) -> None:
        """Publish ``output`` now, while its input is still being processed (streamed chunks), with retries."""


class Stage(Protocol):
    """A pipeline stage's logic; ``services/<stage>/stage.py`` subclasses it, ``app.py`` serves it.

    The constructor is cheap; ``warm_up`` builds heavy state before anything is consumed; ``close``
    releases it once consuming has stopped.
    """

    #: The stage's name in the topology (``shared.contracts.topology``).
    name: ClassVar[str]
    delivery: Delivery = Delivery()

    @property
    def spec(self) -> StageSpec:
        """The stage's declared input, outputs and side inputs."""
        return spec_for(self.name)

    async def warm_up(self, context: StageContext) -> None:  # noqa: ARG002 - what stages that publish use
        """Load what the stage needs (models, indexes); the default needs nothing."""
        return

    async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
        """One entry per input, in order: its outputs, or the exception that failed it."""
        ...

    def side_handlers(self) -> Sequence[SideHandler]:
        """Handlers of the stage's declared side inputs; none by default."""
        return ()

    def parse(self, raw: bytes, record: ReceivedRecord) -> Envelope:
        """The envelope in an input record (preprocess: a client's request, its tenant from the topic)."""
        return parse_envelope(raw, record)

    def may_answer_poison(self, answer: Envelope, record: ReceivedRecord) -> bool:  # noqa: ARG002 - a hook
        """Whether an error answer salvaged from an unreadable record may go to its own ``reply_to``."""
        return True

    async def close(self) -> None:
        """Release heavy state; the default holds none."""
        return


def each(step: Callable[[Envelope], T], items: Sequence[Envelope | Exception]) -> list[T | Exception]:
    """``step`` on every envelope; a failure (an earlier step's or this one's) is that item's result."""
    results: list[T | Exception] = []
    for item in items:
        if isinstance(item, Exception):
            results.append(item)
            continue
        try:
            results.append(step(item))
        except Exception as exc:  # noqa: BLE001 - the runner turns it into this request's error answer
            results.append(exc)
    return results
