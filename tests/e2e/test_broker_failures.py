"""Broker failures on a three-node Apache Kafka cluster (KRaft, replication factor 3, min.insync.replicas 2, acks=all).

- The leader of the request topic's partitions is killed with SIGKILL during 300 requests: every request is
  answered once and nothing is lost; p50/p99 latency during the failover is reported (tests/artifacts).
- The killed node is started again on its own log: it rejoins and every partition gets its three in-sync
  replicas back.
- The whole cluster is unreachable for 30 s (every node stopped with SIGSTOP, connections open, nothing
  answered): the stages wait, keep their data and go on without anyone doing anything.

One stack of its own (topic prefix ``brk.``) on the small model with one-token answers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.brokers import client_env
from shared.stack.embedded import EmbeddedStack
from shared.stack.kafka import KafkaCluster
from shared.stack.processes import free_port
from tests.conftest import SMALL_MODEL

pytestmark = pytest.mark.e2e

REQUESTS = 300
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[KafkaCluster]:
    """Three KRaft nodes, each broker and controller, on free ports."""
    base = tmp_path_factory.mktemp("kafka-cluster")
    nodes = KafkaCluster(ports=[free_port(), free_port(), free_port()], base_dir=base, log_dir=base / "logs")
    await nodes.start(timeout=180)
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
async def replicated(
    cluster: KafkaCluster, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[CoreSettings, EmbeddedStack]]:
    """The pipeline on the cluster: topics with three replicas, every client told all three nodes."""
    core = CoreSettings(
        kafka=KafkaSettings(bootstrap=cluster.bootstrap, replication_factor=3),
        topics=TopicSettings(prefix="brk."),
        default_model=SMALL_MODEL,
    )
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=tmp_path_factory.mktemp("broker-failure-logs"),
        extra_env={**client_env("kafka"), "LLMOPS_QDRANT_PATH": str(tmp_path_factory.mktemp("brk-qdrant"))},
    )
    stop = asyncio.Event()
    try:
        await stack.start(timeout=300)
        supervisor = asyncio.create_task(stack.supervise(stop))
        yield core, stack
        stop.set()
        await supervisor
    finally:
        stack.stop()


async def describe(core: CoreSettings, topics: list[str] | None = None) -> list[dict[str, object]]:
    """The topics' partitions as the cluster describes them (leader, replicas, in-sync replicas)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=core.kafka.bootstrap)
    await admin.start()
    try:
        return await admin.describe_topics(topics)
    finally:
        await admin.close()


async def timed_load(
    core: CoreSettings, count: int, *, fault: Callable[[], Awaitable[None]], after: int
) -> tuple[list[Envelope], list[Envelope], list[float]]:
    """Send ``count`` requests; once ``after`` are answered call ``fault``; (sent, answers, seconds to each answer)."""
    async with LlmopsClient(core) as client:
        sent = [client.build(f"Number {i}:", max_tokens=1, temperature=0.0, timeout=280) for i in range(count)]
        started: dict[str, float] = {}
        latency: dict[str, float] = {}

        async def one(env: Envelope) -> Envelope:
            started[env.request_id] = time.perf_counter()
            answer = await (await client.send(env))
            latency[env.request_id] = time.perf_counter() - started[env.request_id]
            return answer

        tasks = [asyncio.create_task(one(env)) for env in sent]
        for answered, next_answer in enumerate(asyncio.as_completed(tasks), start=1):
            await next_answer
            if answered >= after:
                break
        await fault()
        answers = await asyncio.wait_for(asyncio.gather(*tasks), 300)
    return sent, list(answers), [latency[e.request_id] for e in sent]


def assert_one_answer_each(sent: list[Envelope], answers: list[Envelope]) -> None:
    """Every request answered, in order, without an error, each by the whole pipeline."""
    assert [a.request_id for a in answers] == [e.request_id for e in sent]
    errors = [a.error.code for a in answers if a.error is not None]
    assert not errors, errors[:5]
    assert all(a.trail[-1].stage == "postprocess" for a in answers)


def report(name: str, latencies: list[float], **extra: object) -> dict[str, object]:
    """p50/p99 of a load, written to tests/artifacts/<name>.json (docs/reliability.md quotes it)."""
    ordered = sorted(latencies)
    figures: dict[str, object] = {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        **extra,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{name}: {figures}")  # noqa: T201 - the figures docs/reliability.md records
    return figures


class TestBrokerFailures:
    async def test_topics_have_three_in_sync_replicas(self, replicated: tuple[CoreSettings, EmbeddedStack]) -> None:
        """Every pipeline topic was created with three replicas, all in sync."""
        core, _ = replicated
        for topic in await describe(core, core.topics.all()):
            for partition in topic["partitions"]:  # type: ignore[attr-defined]
                assert len(partition["replicas"]) == 3, topic["topic"]
                assert len(partition["isr"]) == 3, topic["topic"]

    async def test_kill_9_of_the_request_topics_leader_during_load(
        self, cluster: KafkaCluster, replicated: tuple[CoreSettings, EmbeddedStack]
    ) -> None:
        """300 requests; the node leading most request partitions is SIGKILLed after a third: 300 answers, once each."""
        core, _ = replicated
        (requests,) = await describe(core, [core.topics.requests])
        leaders = Counter(p["leader"] for p in requests["partitions"])  # type: ignore[attr-defined]
        victim = leaders.most_common(1)[0][0]

        async def kill_leader() -> None:
            cluster.kill(victim)

        t0 = time.perf_counter()
        sent, answers, latencies = await timed_load(core, REQUESTS, fault=kill_leader, after=REQUESTS // 3)
        assert_one_answer_each(sent, answers)
        assert not cluster.node(victim).running
        (after,) = await describe(core, [core.topics.requests])
        assert victim not in {p["leader"] for p in after["partitions"]}  # type: ignore[attr-defined]
        report(
            "broker_leader_kill",
            latencies,
            killed_node=victim,
            led_partitions=leaders[victim],
            wall_s=round(time.perf_counter() - t0, 1),
        )

    async def test_the_killed_node_rejoins_and_the_cluster_heals(
        self, cluster: KafkaCluster, replicated: tuple[CoreSettings, EmbeddedStack]
    ) -> None:
        """The killed node starts again on its own log; within a minute every partition has three in-sync replicas."""
        core, _ = replicated
        stopped = [n.node_id for n in cluster.nodes if not n.running]
        for node_id in stopped:
            await cluster.restart(node_id, timeout=120)
        t0 = time.perf_counter()
        deadline = t0 + 120
        while True:
            topics = await describe(core, core.topics.all())
            short = [
                (t["topic"], p["partition"])
                for t in topics
                for p in t["partitions"]  # type: ignore[attr-defined]
                if len(p["isr"]) < 3
            ]
            if not short:
                break
            assert time.perf_counter() < deadline, f"still under-replicated: {short[:5]}"
            await asyncio.sleep(1)
        healed_s = round(time.perf_counter() - t0, 1)
        async with LlmopsClient(core) as client:
            answer = await client.ask("Number 1:", max_tokens=1, timeout=120)
        assert answer.error is None
        ARTIFACTS.mkdir(exist_ok=True)
        figures = {"restarted_nodes": stopped, "all_in_sync_after_s": healed_s}
        (ARTIFACTS / "broker_heal.json").write_text(json.dumps(figures, indent=2) + "\n")

    async def test_cluster_unreachable_for_30_s(
        self, cluster: KafkaCluster, replicated: tuple[CoreSettings, EmbeddedStack]
    ) -> None:
        """Every node paused (SIGSTOP) for 30 s mid-load: no service exits, and every request is answered once."""
        core, stack = replicated
        pids = {s.name: s.proc.pid for s in stack.services if s.proc is not None}

        async def outage() -> None:
            for node in cluster.nodes:
                cluster.pause(node.node_id)
            await asyncio.sleep(30)
            for node in cluster.nodes:
                cluster.resume(node.node_id)

        sent, answers, latencies = await timed_load(core, 60, fault=outage, after=20)
        assert_one_answer_each(sent, answers)
        assert {s.name: s.proc.pid for s in stack.services if s.proc is not None} == pids, "no service restarted"
        report("broker_unreachable_30s", latencies)


@pytest.fixture(autouse=True)
def _no_signal_leftovers(cluster: KafkaCluster) -> object:
    """A failed test must not leave a node paused for the next one."""
    yield None
    for node in cluster.nodes:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGCONT)
