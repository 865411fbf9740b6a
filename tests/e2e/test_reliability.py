"""Issue 9's fault tests: kill -9 under load per stage, a whole stage restarted, and a fuzz storm.

One stack of its own (topic prefix ``rel.``) with two replicas of every stage (grounding:
one, it owns the local knowledge store in embedded mode) on the small model, a supervisor
restarting what dies. Requests ask for one token: delivery does not depend on the answer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.cli.dlq import read_dlq
from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import STAGES, EmbeddedStack, ManagedService
from tests.conftest import SMALL_MODEL, core_settings

pytestmark = pytest.mark.e2e

REQUESTS = 300
SCALE = dict.fromkeys(STAGES, 2) | {"grounding": 1}


@pytest.fixture(scope="module")
async def reliability(
    kafka: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[CoreSettings, EmbeddedStack]]:
    core = core_settings(kafka, prefix="rel.")
    core.default_model = SMALL_MODEL
    stack = EmbeddedStack(core, external=True, scale=SCALE, log_dir=tmp_path_factory.mktemp("reliability-logs"))
    stop = asyncio.Event()
    try:
        await stack.start(timeout=300)
        supervisor = asyncio.create_task(stack.supervise(stop))
        yield core, stack
        stop.set()
        await supervisor
    finally:
        stack.stop()


def _replicas(stack: EmbeddedStack, stage: str) -> list[ManagedService]:
    return [s for s in stack.services if s.stage == stage]


async def _load(
    core: CoreSettings, count: int, *, fault: Callable[[], Awaitable[None]]
) -> tuple[list[Envelope], list[Envelope]]:
    """Send ``count`` requests; once a third are answered call ``fault``; return (sent, answers)."""
    async with LlmopsClient(core) as client:
        sent = [client.build(f"Number {i}:", max_tokens=1, temperature=0.0, timeout=280) for i in range(count)]
        futures = [await client.send(env) for env in sent]
        for answered, next_answer in enumerate(asyncio.as_completed(futures), start=1):
            await next_answer
            if answered >= count // 3:
                break
        await fault()
        answers = await asyncio.wait_for(asyncio.gather(*futures), 280)
    return sent, list(answers)


def _assert_one_answer_each(sent: list[Envelope], answers: list[Envelope]) -> None:
    assert len(answers) == len(sent)
    assert [a.request_id for a in answers] == [e.request_id for e in sent]
    errors = [a.error.code for a in answers if a.error is not None]
    assert not errors, errors[:5]
    assert all(a.trail[-1].stage == "postprocess" for a in answers)


class TestKillUnderLoad:
    @pytest.mark.parametrize("stage", STAGES)
    async def test_kill_9_one_replica_mid_load(
        self, reliability: tuple[CoreSettings, EmbeddedStack], stage: str
    ) -> None:
        """300 requests, one replica of the stage SIGKILLed after a third are answered: 300 answers, one each."""
        core, stack = reliability
        await stack.wait_ready(timeout=180)
        victim = _replicas(stack, stage)[0]
        assert victim.proc is not None
        old_pid = victim.proc.pid

        async def kill() -> None:
            assert victim.proc is not None
            victim.proc.send_signal(signal.SIGKILL)

        sent, answers = await _load(core, REQUESTS, fault=kill)
        _assert_one_answer_each(sent, answers)
        assert victim.proc.pid != old_pid, "the supervisor restarted the killed replica"


class TestStageRestart:
    async def test_whole_stage_down_then_back_drains_the_backlog(
        self, reliability: tuple[CoreSettings, EmbeddedStack]
    ) -> None:
        """Every safety replica is killed during load and only comes back after a pause: nothing is lost."""
        core, stack = reliability
        await stack.wait_ready(timeout=180)
        replicas = _replicas(stack, "safety")

        async def outage() -> None:
            for svc in replicas:
                assert svc.proc is not None
                svc.proc.send_signal(signal.SIGKILL)
            # The supervisor restarts them; the backlog builds up on llmops.grounded meanwhile.

        sent, answers = await _load(core, REQUESTS, fault=outage)
        _assert_one_answer_each(sent, answers)


class TestRebalance:
    async def test_replicas_join_and_leave_under_load(self, reliability: tuple[CoreSettings, EmbeddedStack]) -> None:
        """300 requests while inference and postprocess each gain a replica and lose one: 300 answers, one each.

        Each change is a consumer-group rebalance on Apache Kafka: partitions move to the newcomer, and the one
        that leaves (SIGTERM) finishes its message in hand and hands its partitions over.
        """
        core, stack = reliability
        await stack.wait_ready(timeout=180)
        before = {stage: len(_replicas(stack, stage)) for stage in STAGES}
        leaving = [_replicas(stack, "inference")[0], _replicas(stack, "postprocess")[0]]

        async def churn() -> None:
            for svc in leaving:
                await stack.add_replica(svc.stage)
                assert await asyncio.to_thread(stack.remove_replica, svc) == 0

        sent, answers = await _load(core, REQUESTS, fault=churn)
        _assert_one_answer_each(sent, answers)
        assert {stage: len(_replicas(stack, stage)) for stage in STAGES} == before
        assert all(svc not in stack.services for svc in leaving)


# --- fuzz -------------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_wrong_shapes = st.fixed_dictionaries(
    {
        "schema_version": st.sampled_from([1, 2, 0, "1", None]),
        "request_id": st.text(min_size=1, max_size=12) | st.integers(),
        "request": st.one_of(
            st.none(),
            _json_values,
            st.fixed_dictionaries(
                {
                    "messages": st.lists(
                        st.fixed_dictionaries(
                            {"role": st.sampled_from(["hacker", "", "tool", 7]), "content": _json_values}
                        ),
                        max_size=3,
                    )
                }
            ),
        ),
        "tenant": st.sampled_from(["", "x" * 100, None, 5]),
    }
).map(lambda d: json.dumps(d).encode())
_poison = st.one_of(
    st.binary(min_size=0, max_size=200),  # unparseable bytes
    st.binary(min_size=1, max_size=50).map(lambda b: b'{"request_id": "' + b"\xff\xfe" + b + b'"}'),  # invalid UTF-8
    _json_values.map(lambda v: json.dumps(v).encode()),  # JSON of any shape
    _wrong_shapes,  # nearly envelopes: wrong version, roles, types
)
_FUZZ_EXAMPLES = 100
_POISON_PER_EXAMPLE = 50
_sent_poison: list[tuple[str, int, int]] = []


@pytest.fixture(scope="module")
async def producer(reliability: tuple[CoreSettings, EmbeddedStack]) -> AsyncIterator[AIOKafkaProducer]:
    core, _ = reliability
    prod = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap, max_request_size=4 * 1024 * 1024)
    await prod.start()
    yield prod
    await prod.stop()


class TestFuzz:
    @settings(
        max_examples=_FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(_poison, min_size=_POISON_PER_EXAMPLE, max_size=_POISON_PER_EXAMPLE))
    async def test_poison_interleaved_with_valid_requests(
        self, reliability: tuple[CoreSettings, EmbeddedStack], producer: AIOKafkaProducer, batch: list[bytes]
    ) -> None:
        """Each batch of hostile messages, spread over every stage's input, is followed by a request that is answered."""
        core, _ = reliability
        topics = core.topics
        inputs = [topics.requests, topics.preprocessed, topics.grounded, topics.checked, topics.generated]
        for i, value in enumerate(batch):
            topic = inputs[i % len(inputs)]
            meta = await producer.send_and_wait(topic, value, key=b"fuzz")
            _sent_poison.append((topic, meta.partition, meta.offset))
        async with LlmopsClient(core) as client:
            answer = await client.ask("Hi", max_tokens=1, timeout=120)
        assert answer.error is None

    async def test_every_poison_is_in_the_dlq_and_nothing_crashed(
        self, reliability: tuple[CoreSettings, EmbeddedStack], producer: AIOKafkaProducer
    ) -> None:
        """After the storm (plus oversize values): each poison message is on the DLQ and no service restarted."""
        core, stack = reliability
        for _ in range(3):
            meta = await producer.send_and_wait(core.topics.requests, b"x" * (core.kafka.max_message_bytes + 10))
            _sent_poison.append((core.topics.requests, meta.partition, meta.offset))
        assert len(_sent_poison) >= _FUZZ_EXAMPLES * _POISON_PER_EXAMPLE
        pids = {s.name: s.proc.pid for s in stack.services if s.proc is not None}
        wanted = set(_sent_poison)
        deadline = time.monotonic() + 120
        while True:
            found = {
                (
                    r.headers.get("llmops-source-topic", ""),
                    int(r.headers.get("llmops-source-partition", -1)),
                    int(r.headers.get("llmops-source-offset", -1)),
                )
                for r in await read_dlq(core)
            }
            missing = wanted - found
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        assert not missing, sorted(missing)[:10]
        assert all(s.proc is not None and s.proc.poll() is None for s in stack.services)
        assert {s.name: s.proc.pid for s in stack.services if s.proc is not None} == pids
