"""Replay: recorded requests re-sent as shadow requests under a candidate configuration, paired with what users got.

The requests topic is read for a time window (by record timestamp, partitions assigned by hand,
no consumer group); each recorded live request is sent again with a new request id, a new
conversation (no memory mixes), ``shadow`` and ``replay_of`` metadata, and the candidate's model,
template and safety policy, to the shadow reply topic. The answer users got is read from the
original request's reply topic by request id. ``shared.eval.comparison`` scores the pairs.

Example:
    >>> window = TimeWindow.parse("2h")
    >>> originals = select_requests(await read_requests(core, window), tenant="acme")
    >>> async with LlmopsClient(core, reply_to=core.topics.shadow_responses) as client:
    ...     shadows = await Replayer(client).replay(originals.requests, parse_candidate("model=gemma-3-270m"))
    >>> answers = await read_answers(core, originals.requests, window)
    >>> pairs = pair_answers(originals.requests, shadows, answers)

"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.cache.keys import CACHE_METADATA_KEY
from shared.client import BROKER_ERRORS, LlmopsClient
from shared.contracts.envelope import Envelope, new_request_id
from shared.contracts.shadow import POLICY_METADATA_KEY, REPLAY_OF_METADATA_KEY, SHADOW_METADATA_KEY, is_shadow
from shared.eval.results import Outcome
from shared.eval.suite_runner import bounded_gather
from shared.models.usage import parse_since
from shared.runtime.settings import CoreSettings
from shared.runtime.topic_reader import TopicRecord, read_window

__all__ = [
    "Candidate",
    "ReplayPair",
    "Replayer",
    "Selection",
    "ShadowResult",
    "TimeWindow",
    "pair_answers",
    "parse_candidate",
    "pipeline_latency_ms",
    "read_answers",
    "read_requests",
    "select_requests",
    "shadow_request",
]

#: ``request.metadata["shadow"]`` of replayed requests.
REPLAY_SHADOW_VALUE = "replay"
#: Conversation ids of replayed requests start with this (each its own conversation).
REPLAY_CONVERSATION_PREFIX = "replay-"
_CANDIDATE_KEYS = ("model", "template", "policy")


class Candidate(BaseModel):
    """The configuration replayed traffic is served under; an absent part keeps what the original had."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(default=None, description="Registry model (the tenant must be allowed to use it).")
    template: str | None = Field(default=None, description="Prompt template reference, e.g. 'concise@1'.")
    policy: str | None = Field(default=None, description="Named safety policy of the policy file, e.g. 'clinic'.")

    @property
    def label(self) -> str:
        """``model=...,template=...,policy=...`` with the parts given (``original`` when none)."""
        parts = [f"{key}={getattr(self, key)}" for key in _CANDIDATE_KEYS if getattr(self, key)]
        return ",".join(parts) or "original"


def parse_candidate(text: str) -> Candidate:
    """``model=gemma-3-270m,template=concise@1,policy=clinic`` (any of the three, each once).

    Example:
        >>> parse_candidate("model=gemma-3-270m,policy=clinic").label
        'model=gemma-3-270m,policy=clinic'

    """
    values: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            msg = f"candidate part {item!r} is not key=value"
            raise ValueError(msg)
        if key not in _CANDIDATE_KEYS:
            msg = f"unknown candidate key {key!r}; use {', '.join(_CANDIDATE_KEYS)}"
            raise ValueError(msg)
        if key in values:
            msg = f"candidate key {key!r} given twice"
            raise ValueError(msg)
        values[key] = value
    if not values:
        msg = "the candidate names nothing to change (model=..., template=..., policy=...)"
        raise ValueError(msg)
    return Candidate.model_validate(values)


@dataclass(frozen=True)
class TimeWindow:
    """When the replayed requests were recorded: ``since`` to ``until`` (now when open), UTC."""

    since: datetime
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.until is not None and self.until <= self.since:
            msg = f"--until {self.until.isoformat()} is not after --since {self.since.isoformat()}"
            raise ValueError(msg)

    @classmethod
    def parse(cls, since: str, until: str | None = None, *, now: datetime | None = None) -> TimeWindow:
        """From ``--since``/``--until``: ISO times (UTC when no zone) or ages such as ``30m``, ``2h``, ``7d``."""
        now = now or datetime.now(UTC)
        return cls(parse_since(since, now=now), parse_since(until, now=now) if until else None)

    @property
    def since_ms(self) -> int:
        """``since`` in epoch milliseconds (Kafka record timestamps)."""
        return int(self.since.timestamp() * 1000)

    @property
    def until_ms(self) -> int | None:
        """``until`` in epoch milliseconds, or ``None``."""
        return None if self.until is None else int(self.until.timestamp() * 1000)


@dataclass
class Selection:
    """The recorded requests to replay, oldest first, and what was left out and why."""

    requests: list[Envelope] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def select_requests(
    records: Iterable[Envelope | None],
    *,
    tenant: str | None = None,
    limit: int | None = None,
    allowed: Callable[[Envelope], bool] | None = None,
) -> Selection:
    """The live requests among ``records`` (``None``: unreadable), of ``tenant`` if given, each once.

    Shadow requests (replays, evaluations) are never replayed again; ``allowed`` (e.g. whether the
    tenant may use the candidate model) leaves out the others as ``not_allowed``; ``limit`` keeps the first ones.
    """
    selection = Selection()
    seen: set[str] = set()
    for env in records:
        reason = _skip_reason(env, tenant, seen)
        if reason is None and env is not None and allowed is not None and not allowed(env):
            reason = "not_allowed"
        if reason is None and limit is not None and len(selection.requests) >= limit:
            reason = "over_limit"
        if reason is not None:
            selection.skipped[reason] += 1
            continue
        assert env is not None  # noqa: S101 - _skip_reason names unreadable records
        seen.add(env.request_id)
        selection.requests.append(env)
    return selection


def _skip_reason(env: Envelope | None, tenant: str | None, seen: set[str]) -> str | None:
    if env is None:
        return "unreadable"
    if env.kind != "request" or env.request is None:
        return "not_a_request"
    if is_shadow(env) or REPLAY_OF_METADATA_KEY in env.request.metadata:
        return "shadow"
    if tenant is not None and env.tenant != tenant:
        return "other_tenant"
    if env.request_id in seen:
        return "duplicate"
    return None


def shadow_request(
    original: Envelope, candidate: Candidate, *, reply_to: str, timeout: float, now: datetime | None = None
) -> Envelope:
    """The shadow copy of a recorded request: new id and conversation, candidate settings, never streamed.

    Example:
        >>> shadow = shadow_request(recorded, Candidate(model="gemma-3-270m"), reply_to="llmops.responses.shadow")
        >>> shadow.require_request().metadata["replay_of"] == recorded.request_id
        True

    """
    request = original.require_request()
    metadata = dict(request.metadata) | {
        SHADOW_METADATA_KEY: REPLAY_SHADOW_VALUE,
        REPLAY_OF_METADATA_KEY: original.request_id,
        CACHE_METADATA_KEY: "off",
    }
    if candidate.template:
        metadata["template"] = candidate.template
    if candidate.policy:
        metadata[POLICY_METADATA_KEY] = candidate.policy
    request_id = new_request_id()
    return Envelope(
        request_id=request_id,
        # Its own conversation: the shadow answer neither reads nor (being shadow) writes the user's memory.
        conversation_id=f"{REPLAY_CONVERSATION_PREFIX}{request_id}",
        tenant=original.tenant,
        reply_to=reply_to,
        deadline=(now or datetime.now(UTC)) + timedelta(seconds=timeout),
        request=request.model_copy(
            update={"model": candidate.model or request.model, "stream": False, "metadata": metadata}
        ),
    )


def _parse(record: TopicRecord) -> Envelope | None:
    try:
        return Envelope.from_bytes(record.value)
    except (ValidationError, ValueError):
        return None


async def read_requests(core: CoreSettings, window: TimeWindow, *, timeout_s: float = 5.0) -> list[Envelope | None]:
    """Every record on the requests topic in the window (``None`` for one that is not an envelope), oldest first."""
    records = await read_window(
        core.kafka, core.topics.requests, since_ms=window.since_ms, until_ms=window.until_ms, timeout_s=timeout_s
    )
    records.sort(key=lambda r: (r.timestamp_ms or 0, r.partition, r.offset))
    return [_parse(r) for r in records]


async def read_answers(
    core: CoreSettings, originals: Sequence[Envelope], window: TimeWindow, *, timeout_s: float = 5.0
) -> dict[str, Envelope]:
    """The final answer users got for each original, from its reply topic, by request id (the first one wins).

    Each reply topic named is read from ``since`` to its end: answers come after their requests,
    so after ``until`` too.
    """
    wanted = {env.request_id for env in originals}
    topics = sorted({env.reply_to or core.topics.responses for env in originals})
    answers: dict[str, Envelope] = {}
    for topic in topics:
        for record in await read_window(core.kafka, topic, since_ms=window.since_ms, timeout_s=timeout_s):
            env = _parse(record)
            if env is not None and env.kind == "final" and env.request_id in wanted:
                answers.setdefault(env.request_id, env)
    return answers


@dataclass(frozen=True)
class ShadowResult:
    """One replayed request: the shadow request sent, and its answer (``None`` when none came in time)."""

    original_id: str
    request: Envelope
    answer: Envelope | None
    failure: str | None = None


class Replayer:
    """Sends shadow copies of recorded requests, a few at a time, and waits for their answers.

    The client must read the shadow reply topic (``LlmopsClient(core, reply_to=core.topics.shadow_responses)``).
    """

    def __init__(self, client: LlmopsClient, *, concurrency: int = 2, timeout: float = 180.0) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)
        self.timeout = timeout

    async def replay_one(self, original: Envelope, candidate: Candidate) -> ShadowResult:
        """Send one shadow copy and wait for its answer; a timeout or broker failure is a result without answer."""
        shadow = shadow_request(original, candidate, reply_to=self.client.reply_to, timeout=self.timeout)
        try:
            fut = await self.client.send(shadow)
            answer = await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            self.client.forget(shadow.request_id)
            return ShadowResult(original.request_id, shadow, None, "client_timeout")
        except BROKER_ERRORS as exc:
            return ShadowResult(original.request_id, shadow, None, f"broker_error: {type(exc).__name__}")
        return ShadowResult(original.request_id, shadow, answer)

    async def replay(
        self,
        originals: Sequence[Envelope],
        candidate: Candidate,
        *,
        on_result: Callable[[ShadowResult], None] | None = None,
    ) -> list[ShadowResult]:
        """Every original replayed, results in the originals' order; ``on_result`` sees each as it completes."""
        jobs = [functools.partial(self.replay_one, original, candidate) for original in originals]
        return await bounded_gather(jobs, self.concurrency, on_result)


def pipeline_latency_ms(answer: Envelope) -> float:
    """From the request's creation to the end of the last stage's work on it, from the answer's trail."""
    if not answer.trail:
        return 0.0
    last = max(answer.trail, key=lambda t: t.started_at + timedelta(milliseconds=t.duration_ms))
    finished = last.started_at + timedelta(milliseconds=last.duration_ms)
    return max(0.0, (finished - answer.created_at).total_seconds() * 1000)


class ReplayPair(BaseModel):
    """One recorded request: the answer users got and the shadow answer, as outcomes."""

    request_id: str = Field(description="The recorded request's id.")
    shadow_request_id: str
    tenant: str
    original: Outcome | None = Field(description="What users got; None when it is not on the reply topic (any more).")
    shadow: Outcome | None = Field(description="The candidate's answer; None when none came in time.")
    shadow_failure: str | None = Field(default=None, description="Why there is no shadow answer.")


def _outcome(answer: Envelope | None) -> Outcome | None:
    return None if answer is None else Outcome.from_envelope(answer, pipeline_latency_ms(answer))


def pair_answers(
    originals: Sequence[Envelope], shadows: Sequence[ShadowResult], answers: dict[str, Envelope]
) -> list[ReplayPair]:
    """Each replayed original with its users' answer and its shadow answer, in the originals' order."""
    by_original = {s.original_id: s for s in shadows}
    pairs = []
    for env in originals:
        shadow = by_original.get(env.request_id)
        if shadow is None:
            continue
        pairs.append(
            ReplayPair(
                request_id=env.request_id,
                shadow_request_id=shadow.request.request_id,
                tenant=env.tenant,
                original=_outcome(answers.get(env.request_id)),
                shadow=_outcome(shadow.answer),
                shadow_failure=shadow.failure,
            )
        )
    return pairs
