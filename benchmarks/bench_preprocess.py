"""Preprocess: per-message latency at low load (with the split per step) and messages/s with batching.

Three measurements on the same corpus of dirty prompts (the golden file's inputs, cycled):

1. Low load: one message at a time through ``Preprocessor.process`` (repair, language,
   typos, tokenize, embed): p50/p95 per message and the mean split per step.
2. Batched logic: ``Preprocessor.process_batch`` on batches of 32: messages/s of the
   stage's own work with one embedding call per batch.
3. One replica on a real Tansu broker: the service consumes a backlog in batches
   (``batch_max_records``), publishes every result and commits; messages/s from the first
   request sent to the last result read, Kafka included.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from benchmarks.report import Section, percentile, table
from services.preprocess.app import create_service
from services.preprocess.preprocessor import STEPS, Preprocessor
from services.preprocess.settings import PreprocessSettings
from services.preprocess.stage import build_preprocessor
from shared.contracts.envelope import ChatMessage, Envelope, Request
from shared.runtime.service import raw_body
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.embedded import free_port
from shared.stack.tansu import TansuBroker
from shared.stack.topics import ensure_topics

__all__ = ["run"]

_GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "data" / "preprocess" / "golden.jsonl"
_LOW_LOAD = 300
_BATCH = 32
_BATCHED = 640
_KAFKA = 1500
_TARGET_P50_MS = 15.0
_TARGET_RATE = 150.0


def _corpus() -> list[str]:
    return [json.loads(line)["input"] for line in _GOLDEN.read_text(encoding="utf-8").splitlines() if line]


def _envelope(text: str, i: int) -> Envelope:
    return Envelope(
        conversation_id=f"bench-{i % 64}",
        request=Request(messages=[ChatMessage(role="user", content=text)]),
    )


def _low_load(pre: Preprocessor, corpus: list[str]) -> tuple[list[float], dict[str, float]]:
    for i in range(20):  # warm caches and torch's first-call paths
        pre.process(_envelope(corpus[i % len(corpus)], i))
    pre.reset_timings()
    durations = []
    for i in range(_LOW_LOAD):
        t0 = time.perf_counter()
        pre.process(_envelope(corpus[i % len(corpus)], i))
        durations.append((time.perf_counter() - t0) * 1000)
    split = {step: ms / _LOW_LOAD for step, ms in pre.timings.items()}
    return durations, split


def _batched(pre: Preprocessor, corpus: list[str]) -> tuple[float, dict[str, float]]:
    envs = [_envelope(corpus[i % len(corpus)], i) for i in range(_BATCHED)]
    pre.reset_timings()
    t0 = time.perf_counter()
    for start in range(0, _BATCHED, _BATCH):
        pre.process_batch(envs[start : start + _BATCH])
    elapsed = time.perf_counter() - t0
    return _BATCHED / elapsed, {step: ms / _BATCHED for step, ms in pre.timings.items()}


async def _on_kafka(pre: Preprocessor, corpus: list[str]) -> tuple[float, float]:
    """Messages/s of one replica draining a backlog through Tansu, and the p50 trail duration (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = TansuBroker("127.0.0.1", free_port(), log_path=Path(tmp) / "tansu.log")
        await broker.start()
        try:
            core = CoreSettings(kafka=KafkaSettings(bootstrap=broker.bootstrap), topics=TopicSettings(prefix="bench."))
            await ensure_topics(core.kafka, core.topics.all())
            service = create_service(PreprocessSettings(core=core, group_id="bench-preprocess"), preprocessor=pre)
            done: list[bytes] = []
            finished = asyncio.Event()

            @service.broker.subscriber(core.topics.preprocessed, group_id="bench-reader", decoder=raw_body)
            async def collect(body: bytes) -> None:
                done.append(body)
                if len(done) >= _KAFKA:
                    finished.set()

            await service.warm_up()
            await service.broker.start()
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
            await producer.start()
            try:
                t0 = time.perf_counter()
                for i in range(_KAFKA):
                    env = _envelope(corpus[i % len(corpus)], i)
                    await producer.send(core.topics.requests, env.to_bytes(), key=env.conversation_id.encode())
                await producer.flush()
                await asyncio.wait_for(finished.wait(), timeout=300)
                elapsed = time.perf_counter() - t0
            finally:
                await producer.stop()
                await service.broker.stop()
            trail = [Envelope.from_bytes(b).trail[-1].duration_ms for b in done]
            return _KAFKA / elapsed, percentile(trail, 50)
        finally:
            broker.stop()


async def run() -> Section:
    """Run the three measurements and report them."""
    load = os.getloadavg()[0]
    settings = PreprocessSettings()
    pre = build_preprocessor(settings)
    pre.warm_up()
    corpus = _corpus()
    durations, split = _low_load(pre, corpus)
    rate, batch_split = _batched(pre, corpus)
    kafka_rate, trail_p50 = await _on_kafka(pre, corpus)
    p50, p95 = percentile(durations, 50), percentile(durations, 95)
    rows = [[step, split[step], batch_split[step]] for step in STEPS]
    rows.append(["total", sum(split.values()), sum(batch_split.values())])
    body = "\n\n".join(
        [
            (
                f"Corpus: the {len(corpus)} dirty prompts of `tests/data/preprocess/golden.jsonl`, cycled; model "
                f"{pre.registry.default}; embedding all-MiniLM-L6-v2 on the CPU "
                f"(torch threads: {settings.embed_threads or 'all'}). Load average when it started: {load:.1f} "
                f"on {os.cpu_count()} cores (other work on the machine slows the embedding most)."
            ),
            table(
                ["measure", "value", "target"],
                [
                    ["p50 per message, one at a time (ms)", p50, f"< {_TARGET_P50_MS:.0f}"],
                    ["p95 per message, one at a time (ms)", p95, ""],
                    [f"messages/s, logic in batches of {_BATCH}", rate, f">= {_TARGET_RATE:.0f}"],
                    ["messages/s, one replica on Tansu (Kafka included)", kafka_rate, f">= {_TARGET_RATE:.0f}"],
                    ["p50 stage time per batch on Tansu (trail, ms)", trail_p50, ""],
                ],
            ),
            "Mean milliseconds per message and step:",
            table(["step", "one at a time", f"batches of {_BATCH}"], rows),
        ]
    )
    figures = {
        "p50_ms": p50,
        "p95_ms": p95,
        "batched_msg_per_s": rate,
        "kafka_msg_per_s": kafka_rate,
        **{f"split_{step}_ms": split[step] for step in STEPS},
    }
    return Section("Preprocess stage", body, figures)
