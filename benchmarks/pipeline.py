"""Pipeline overhead measured from the client: end-to-end latency split into stage work, generation and hops.

For each answer: ``e2e`` is measured by the client (send → final answer received);
``stages`` is the sum of the trail's per-stage durations (each stage's own processing,
generation included for inference); ``generation`` is inference's generation time.
Transport (the five hops, client included) = e2e − stages; overhead = e2e − generation.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.report import percentile
from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.brokers import BrokerKind
from shared.stack.embedded import STAGES, EmbeddedStack, free_port

__all__ = ["BROKERS", "BROKER_NAMES", "LONG_PROMPTS", "PROMPTS", "Split", "embedded_stack", "measure"]

PROMPTS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "What is 2 + 2?",
    "Which planet is closest to the sun?",
    "Give me a synonym for happy.",
    "What language is spoken in Brazil?",
    "How many days are in a week?",
    "What is the boiling point of water in Celsius?",
    "Who wrote Romeo and Juliet?",
    "What is the largest ocean?",
]

#: 50 different prompts whose answers run past 64 tokens: each answer is a 64-token answer
#: (``finish_reason="length"``), and no prompt repeats, so neither side gains from a cached prompt.
LONG_PROMPTS = [
    f"Explain {topic} in one paragraph."
    for topic in (
        "how a rainbow forms",
        "why the sky is blue",
        "how vaccines work",
        "what photosynthesis is",
        "how a bicycle stays upright",
        "what inflation is",
        "how tides work",
        "what a black hole is",
        "how the heart pumps blood",
        "why leaves change colour in autumn",
        "how a compiler works",
        "what a hash table is",
        "how public key cryptography works",
        "what a database index is",
        "how TCP differs from UDP",
        "what recursion is",
        "how garbage collection works",
        "what a virtual machine is",
        "how DNS resolves a name",
        "what a REST API is",
        "how an electric motor works",
        "why ice floats on water",
        "how earthquakes happen",
        "what the water cycle is",
        "how bees make honey",
        "how a refrigerator keeps food cold",
        "what supply and demand means",
        "how a bill becomes law",
        "what the Renaissance was",
        "how the printing press changed Europe",
        "what machine learning is",
        "how a neural network learns",
        "what a transformer model is",
        "how a search engine ranks pages",
        "what cloud computing is",
        "how solar panels make electricity",
        "how a nuclear reactor works",
        "why we have seasons",
        "how the moon affects the Earth",
        "what plate tectonics is",
        "how bread rises",
        "why exercise is good for the heart",
        "how sleep affects memory",
        "what a budget deficit is",
        "how a credit score works",
        "what version control is",
        "how unit tests help a project",
        "what a message queue is",
        "how a load balancer works",
        "what an operating system does",
    )
]


@dataclass
class Split:
    """Per-request figures in milliseconds."""

    e2e: list[float] = field(default_factory=list)
    stages: list[float] = field(default_factory=list)
    generation: list[float] = field(default_factory=list)
    per_stage: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    #: Each hop's gap ("preprocess → grounding": the next stage's start minus this one's end), from the trail.
    per_hop: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0

    def add(self, answer: Envelope, e2e_ms: float) -> None:
        """Record one answer (call it as the answer arrives: the last hop ends now)."""
        received = datetime.now(UTC)
        if answer.error is not None:
            self.errors += 1
            return
        self._hops(answer, received)
        self.e2e.append(e2e_ms)
        self.stages.append(sum(t.duration_ms for t in answer.trail))
        self.generation.append(answer.completion.generation_ms if answer.completion else 0.0)
        for record in answer.trail:
            self.per_stage.setdefault(record.stage, []).append(record.duration_ms)

    def _hops(self, answer: Envelope, received: datetime) -> None:
        previous, ended = "client", answer.created_at
        for record in answer.trail:
            self.per_hop.setdefault(f"{previous} → {record.stage}", []).append(
                (record.started_at - ended).total_seconds() * 1000
            )
            previous, ended = record.stage, record.started_at + timedelta(milliseconds=record.duration_ms)
        self.per_hop.setdefault(f"{previous} → client", []).append((received - ended).total_seconds() * 1000)

    def hop_rows(self) -> list[list[object]]:
        """Rows of ``hop, p50 ms, p99 ms`` for a report table."""
        return [[hop, percentile(v, 50), percentile(v, 99)] for hop, v in self.per_hop.items() if v]

    @property
    def transport(self) -> list[float]:
        """e2e minus every stage's own time: the hops."""
        return [e - s for e, s in zip(self.e2e, self.stages, strict=True)]

    @property
    def overhead(self) -> list[float]:
        """e2e minus generation: what the pipeline adds to the model."""
        return [e - g for e, g in zip(self.e2e, self.generation, strict=True)]

    def figures(self) -> dict[str, float]:
        """p50/p99 of transport and overhead."""
        return {
            "transport_p50_ms": percentile(self.transport, 50),
            "transport_p99_ms": percentile(self.transport, 99),
            "overhead_p50_ms": percentile(self.overhead, 50),
            "overhead_p99_ms": percentile(self.overhead, 99),
            "e2e_p50_ms": percentile(self.e2e, 50),
            "e2e_p99_ms": percentile(self.e2e, 99),
        }


#: The brokers the transport benchmarks compare, in the order they run: Apache Kafka, then the embedded Tansu.
BROKERS: tuple[BrokerKind, ...] = ("kafka", "tansu")
BROKER_NAMES: dict[BrokerKind, str] = {"kafka": "Apache Kafka 4.1.1 (Maven, KRaft)", "tansu": "Tansu (embedded)"}


def embedded_stack(model: str, *, broker: BrokerKind = "tansu", **env: str) -> EmbeddedStack:
    """A fresh stack (own broker of ``broker``'s kind, knowledge folder and logs; the installed models) on ``model``.

    The services get the client settings that suit the broker (``shared.stack.brokers.client_env``).
    """
    scratch = Path(tempfile.mkdtemp(prefix="llmops-bench-"))
    core = CoreSettings(kafka=KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"), topics=TopicSettings())
    core.default_model = model
    env = {"LLMOPS_QDRANT_PATH": str(scratch / "qdrant")} | env
    return EmbeddedStack(core, log_dir=scratch / "logs", extra_env=env, broker=broker)


async def measure(core: CoreSettings, prompts: list[str], *, max_tokens: int, warm: int = 3) -> Split:
    """Ask each prompt in turn (one at a time: latency, not throughput) and split the latency."""
    split = Split()
    async with LlmopsClient(core) as client:
        for prompt in prompts[:warm]:
            await client.ask(prompt, max_tokens=max_tokens, temperature=0.0, raise_on_error=False)
        for prompt in prompts:
            t0 = time.perf_counter()
            answer = await client.ask(prompt, max_tokens=max_tokens, temperature=0.0, raise_on_error=False)
            split.add(answer, (time.perf_counter() - t0) * 1000)
    return split
