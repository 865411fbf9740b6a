"""Feature costs: milliseconds per request each switchable feature adds to its stage's own processing.

Every feature is timed in-process on the code the service runs (``Preprocessor.process``,
``Grounder.process``, ``SafetyChecker.process``, ``Finisher.finish``), once with it on and
once with it off, through the switch the service itself has: the per-request
``typo_correction`` metadata, ``retrieval_k=0``, ``entities=false``, and per-tenant safety
policies (one tenant per variant, so one checker serves them all as in production).
Output checks are switched through ``OutputChecker(guards=...)``: a policy's ``output`` check with
``enabled: false`` drops its findings but its guard still scans (only leakage is skipped).

Inputs are the other benchmarks' corpora: the golden file's dirty prompts (preprocess), the
SQLite documentation questions against that documentation ingested into a temporary Qdrant
local folder (grounding), the safety benchmark's 200-token prompt grounded the same way
(safety) and the postprocess benchmark's 300-token answer (postprocess). After warm-up the
variants run interleaved, their order rotating per request, so machine load hits on and off
alike; the cost is p50 on minus p50 off, so a cost below the noise may come out negative. Each
call's CPU time is recorded too: on a shared machine its cost moves far less than the wall clock's.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.bench_grounding import _TENANT as KB_TENANT
from benchmarks.bench_grounding import _ingest as ingest_sqlite_docs
from benchmarks.bench_postprocess import _answer as postprocess_answer
from benchmarks.bench_postprocess import _envelope as postprocess_envelope
from benchmarks.bench_postprocess import _token_counter
from benchmarks.bench_preprocess import _GOLDEN
from benchmarks.bench_safety import PROMPT as SAFETY_PROMPT
from benchmarks.report import Section, percentile, table
from services.grounding.entities import EntityExtractor
from services.grounding.grounder import Grounder
from services.grounding.memory import ConversationMemory
from services.grounding.settings import GroundingSettings
from services.grounding.stage import build_grounder
from services.postprocess.finisher import Finisher
from services.postprocess.output_checks import OutputChecker, OutputContext
from services.postprocess.polish import polish_answer
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from services.preprocess.stage import build_preprocessor
from services.preprocess.tenant_switches import TYPO_METADATA_KEY
from services.safety.checker import SafetyChecker
from services.safety.context_memo import ContextMemo
from services.safety.policy_file import SafetyPolicy
from shared.contracts.envelope import ChatMessage, Envelope, Request
from shared.guards import GuardResources, PolicySet
from shared.guards.output_scan import OutputGuard, default_output_guards
from shared.knowledge.store import KnowledgeStore
from shared.knowledge.tokens import TokenCounter
from shared.text.embedder import Embedder

__all__ = ["run"]

_QUESTIONS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sqlite-docs" / "questions.jsonl"
_PREPROCESS_ROUNDS = 3  # x 73 prompts
_GROUNDING_ROUNDS = 4  # x 45 questions
_SAFETY_ROUNDS = 30  # x 1 prompt
_POSTPROCESS_ROUNDS = 200  # x 1 answer
_WARM = 3

# Input checks in the order the suite runs them, then the one on retrieved chunks.
_SAFETY_CHECKS = ("length", "secrets", "pii", "profanity", "injection", "banned_topics", "context_injection")
_PRESIDIO_TYPES = {"PERSON", "LOCATION"}

T = TypeVar("T")
U = TypeVar("U")
Variant = Callable[[T], object | Awaitable[object]]


@dataclass(frozen=True)
class _Samples:
    """Milliseconds per call: wall clock, and the process's CPU time (what other work on the machine hardly moves)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(self.wall, 50)

    @property
    def cpu_p50(self) -> float:
        return percentile(self.cpu, 50)


@dataclass(frozen=True)
class _Row:
    feature: str
    stage: str
    on: _Samples
    off: _Samples
    key: str
    per_round: int = 1  # samples per round (one per input)

    @property
    def cost(self) -> float:
        return self.on.p50 - self.off.p50

    @property
    def cpu_cost(self) -> float:
        return self.on.cpu_p50 - self.off.cpu_p50

    @property
    def noise(self) -> float:
        """How far the p50 of the "on" runs moves between even and odd rounds: costs below it are not resolved."""
        halves: tuple[list[float], list[float]] = ([], [])
        for i, ms in enumerate(self.on.wall):
            halves[(i // self.per_round) % 2].append(ms)
        return abs(percentile(halves[0], 50) - percentile(halves[1], 50))


async def _call(fn: Variant[T], item: T) -> None:
    result = fn(item)
    if inspect.isawaitable(result):
        await result


def _fixed(fn: Callable[[U], object], arg: U) -> Variant[None]:
    """``fn(arg)`` as a variant of the single-input measurements."""
    return lambda _none: fn(arg)


async def _warm(variants: dict[str, Variant[T]], inputs: Sequence[T]) -> None:
    for fn in variants.values():
        for k in range(_WARM):
            await _call(fn, inputs[k % len(inputs)])


async def _interleaved(variants: dict[str, Variant[T]], inputs: Sequence[T], rounds: int) -> dict[str, _Samples]:
    """Milliseconds per call of each variant on every input; the variants' order rotates per call."""
    names = list(variants)
    samples = {name: _Samples() for name in names}
    for round_ in range(rounds):
        for i, item in enumerate(inputs):
            shift = (round_ + i) % len(names)
            for name in names[shift:] + names[:shift]:
                wall, cpu = time.perf_counter(), time.process_time()
                await _call(variants[name], item)
                samples[name].cpu.append((time.process_time() - cpu) * 1000)
                samples[name].wall.append((time.perf_counter() - wall) * 1000)
    return samples


def _request(text: str, i: int, *, tenant: str = "default", metadata: dict[str, str] | None = None) -> Envelope:
    return Envelope(
        conversation_id=f"bench-features-{i}",
        tenant=tenant,
        request=Request(messages=[ChatMessage(role="user", content=text)], metadata=metadata or {}),
    )


async def _preprocess(pre: Preprocessor) -> tuple[list[_Row], str]:
    """Typo correction, switched per request (``metadata.typo_correction = "off"``)."""
    corpus = [json.loads(line)["input"] for line in _GOLDEN.read_text(encoding="utf-8").splitlines() if line]
    pairs = [
        (_request(text, i), _request(text, i, metadata={TYPO_METADATA_KEY: "off"})) for i, text in enumerate(corpus)
    ]
    variants: dict[str, Variant[tuple[Envelope, Envelope]]] = {
        "on": lambda pair: pre.process(pair[0]),
        "off": lambda pair: pre.process(pair[1]),
    }
    await _warm(variants, pairs)
    pre.reset_timings()
    samples = await _interleaved(variants, pairs, _PREPROCESS_ROUNDS)
    typo_step = pre.timings["typo"] / (_PREPROCESS_ROUNDS * len(pairs))
    corrected = sum(1 for on, _ in pairs if (prepared := pre.prepare(on).prepared) and prepared.corrections)
    note = (
        f"Typo correction: {len(corpus)} prompts of `tests/data/preprocess/golden.jsonl` x {_PREPROCESS_ROUNDS} "
        f"(typos corrected in {corrected} of them); the stage time includes the MiniLM embedding (one torch "
        f"thread), whose jitter is larger than the step itself: the typo step alone averaged {typo_step:.3f} ms "
        "(`Preprocessor.timings`)."
    )
    return [_Row("typo correction", "preprocess", samples["on"], samples["off"], "typo", len(pairs))], note


async def _grounding(
    pre: Preprocessor, store: KnowledgeStore, chunks: int
) -> tuple[list[_Row], str, Grounder, dict[str, float]]:
    """Retrieval (``retrieval_k=0`` turns it off) and entity extraction (``entities=false``)."""
    settings = GroundingSettings()
    counter = TokenCounter()
    counter.warm_up()
    extractor = EntityExtractor()
    extractor.warm_up()
    memory = ConversationMemory(
        recent_turns=settings.memory_turns,
        relevant_turns=settings.memory_relevant_turns,
        max_turns=settings.memory_max_turns,
        min_relevance=settings.memory_min_relevance,
        count_tokens=counter.count,
    )
    full = build_grounder(settings, store, counter, extractor, memory)
    no_retrieval = build_grounder(settings.model_copy(update={"retrieval_k": 0}), store, counter, extractor, memory)
    no_entities = build_grounder(settings, store, counter, None, memory)
    questions = [json.loads(line)["question"] for line in _QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    prepared = [pre.process(_request(q, i, tenant=KB_TENANT)) for i, q in enumerate(questions)]
    variants: dict[str, Variant[Envelope]] = {
        "all": full.process,
        "no retrieval": no_retrieval.process,
        "no entities": no_entities.process,
    }
    await _warm(variants, prepared)
    samples = await _interleaved(variants, prepared, _GROUNDING_ROUNDS)
    documents = [len(g.documents) for env in prepared if (g := (await full.process(env)).grounding)]
    on, n = samples["all"], len(prepared)
    rows = [
        _Row(f"retrieval (top {settings.retrieval_k})", "grounding", on, samples["no retrieval"], "retrieval", n),
        _Row("entity extraction (spaCy)", "grounding", on, samples["no entities"], "entities", n),
    ]
    note = (
        f"Retrieval and entities: the {len(questions)} SQLite documentation questions x {_GROUNDING_ROUNDS}, "
        f"embedded by preprocess, against the {chunks} chunks of `tests/data/sqlite-docs` in a temporary Qdrant "
        f"local folder; {sum(documents) / len(documents):.1f} chunks retrieved per question on average."
    )
    return rows, note, full, {"documents_per_question": sum(documents) / len(documents)}


def _safety_policy() -> tuple[SafetyPolicy, dict[str, tuple[str, str, str]], dict[str, str]]:
    """The packaged policy plus one tenant per variant; (on tenant, off tenant) per feature, and alone tenants."""
    base = SafetyPolicy.load()
    topics = base.tenants["clinic"]["checks"]["banned_topics"]
    structured = [t for t in base.for_tenant("default").checks.pii.types if t.upper() not in _PRESIDIO_TYPES]
    tenants: dict[str, dict[str, Any]] = {
        **{f"without-{c}": {"checks": {c: {"enabled": False}}} for c in _SAFETY_CHECKS if c != "banned_topics"},
        "without-pii-names": {"checks": {"pii": {"types": structured}}},
        "without-detect-secrets": {"checks": {"secrets": {"detect_secrets": False}}},
        "with-banned_topics": {"checks": {"banned_topics": topics}},
        "none": {"checks": {c: {"enabled": False} for c in _SAFETY_CHECKS}},
    }
    for check in _SAFETY_CHECKS:
        only = {c: {"enabled": c == check} for c in _SAFETY_CHECKS}
        if check == "banned_topics":
            only[check] = topics
        tenants[f"only-{check}"] = {"checks": only}
    policy = SafetyPolicy.model_validate({"version": base.version, "default": base.default, "tenants": tenants})
    # feature → (its label, tenant with it on, tenant with it off)
    pairs = {
        "length": ("length", "default", "without-length"),
        "secrets": ("secrets (patterns + detect-secrets)", "default", "without-secrets"),
        "detect_secrets": ("secrets: detect-secrets scan", "default", "without-detect-secrets"),
        "pii": ("pii (patterns + Presidio)", "default", "without-pii"),
        "pii_names": ("pii: PERSON/LOCATION (Presidio)", "default", "without-pii-names"),
        "profanity": ("profanity", "default", "without-profanity"),
        "injection": ("injection (prompt)", "default", "without-injection"),
        "context_injection": ("context_injection (retrieved chunks)", "default", "without-context_injection"),
        "banned_topics": ("banned_topics (off by default; clinic's topic)", "with-banned_topics", "default"),
    }
    return policy, pairs, {check: f"only-{check}" for check in _SAFETY_CHECKS}


async def _safety(grounded: Envelope, resources: GuardResources) -> tuple[list[_Row], list[list[object]], str]:
    """Each check: the default suite against the suite without it (tenant policies), and each check alone."""
    policy, pairs, alone = _safety_policy()
    # No memo: every request's chunks are checked, so the checks' own costs show.
    checker = SafetyChecker(policy, resources, memo=ContextMemo(0))
    checker.warm_up()
    # The service's default: chunks seen before are not re-checked (only the default tenant's suite, warmed below).
    remembering = SafetyChecker(policy, resources)
    tenants = ["default", *policy.tenants]
    envs = {t: grounded.model_copy(update={"tenant": t}) for t in tenants}
    variants = {t: _fixed(checker.process, env) for t, env in envs.items()}
    variants["default-memo"] = _fixed(remembering.process, envs["default"])
    await _warm(variants, [None])
    samples = await _interleaved(variants, [None], _SAFETY_ROUNDS)
    rows = [
        _Row(label, "safety", samples[on], samples[off], f"safety_{key}") for key, (label, on, off) in pairs.items()
    ]
    rows.append(
        _Row(
            "re-checking chunks checked before (what `ContextMemo` saves)",
            "safety",
            samples["default"],
            samples["default-memo"],
            "safety_context_memo_saving",
        )
    )
    none = samples["none"]
    alone_rows: list[list[object]] = [
        [check, samples[t].p50, samples[t].p50 - none.p50, samples[t].cpu_p50 - none.cpu_p50]
        for check, t in alone.items()
    ]
    alone_rows.append(["none (every check off)", none.p50, 0.0, 0.0])
    verdict = checker.process(grounded).safety
    chunks = len(grounded.grounding.documents) if grounded.grounding else 0
    context = next(r for r in rows if r.key == "safety_context_injection")
    note = (
        f"Safety checks: the safety benchmark's prompt ({len(SAFETY_PROMPT)} characters, an email and a name in it) "
        f"through preprocess and grounding, with {chunks} retrieved chunks for `context_injection`; default "
        f"tenant's verdict `{verdict.verdict if verdict else '?'}`; {_SAFETY_ROUNDS} rounds of {len(tenants)} "
        f"tenant policies. `context_injection` costs {context.cpu_cost / max(chunks, 1):.1f} CPU ms per retrieved "
        "chunk checked: each is embedded with MiniLM (all in one call; the store's vector is of the title and "
        "heading with the text, not what the classifier was trained on), then classified. The service keeps "
        "recent chunks' findings (`ContextMemo`, `LLMOPS_SAFETY_CONTEXT_MEMO_ENTRIES`), so a chunk retrieved "
        "again is not checked again; the rows above check every time. The detect-secrets scan only runs on "
        "text with a secret-looking token, which this prompt has not."
    )
    return rows, alone_rows, note


async def _postprocess() -> tuple[list[_Row], str]:
    """Output checks through ``OutputChecker(guards=...)``: all, none, and all but one guard."""
    count, counted_by = _token_counter()
    text = postprocess_answer(300, count)
    env = postprocess_envelope(text)
    policy = PolicySet.load()
    names = ("pii", "secrets", "profanity")  # default_output_guards(), in its order

    def finisher(guards: list[OutputGuard]) -> Finisher:
        built = Finisher(OutputChecker(guards, policy))
        built.warm_up()
        return built

    all_on = finisher(default_output_guards())
    guards_off = finisher([])
    without = {n: finisher([g for g, m in zip(default_output_guards(), names, strict=True) if m != n]) for n in names}
    polished = polish_answer(text, finish_reason="length").text
    context = OutputContext.from_envelope(env)
    variants: dict[str, Variant[None]] = {
        "all": lambda _none: all_on.finish(env),
        "off": lambda _none: guards_off.finish(env),
        **{n: _fixed(f.finish, env) for n, f in without.items()},
        "leakage only": lambda _none: guards_off.checker.check(polished, context),
    }
    await _warm(variants, [None])
    samples = await _interleaved(variants, [None], _POSTPROCESS_ROUNDS)
    rows = [
        _Row("output checks: guards (pii, secrets, profanity)", "postprocess", samples["all"], samples["off"], "output")
    ]
    rows += [_Row(f"output check: {n}", "postprocess", samples["all"], samples[n], f"output_{n}") for n in names]
    note = (
        f"Output checks: the postprocess benchmark's answer ({count(text)} tokens, {counted_by}) through "
        f"`Finisher.finish`, {_POSTPROCESS_ROUNDS} rounds. No setting turns output checks off: the guards are "
        "switched through the `OutputChecker(guards=...)` constructor argument (what `default_output_guards()` fills). "
        "The leakage check (system prompt and dropped documents) has no switch at all and runs in both; alone "
        f"(`OutputChecker.check` with no guards) it took {samples['leakage only'].p50:.2f} ms p50."
    )
    return rows, note


def _first_per_stage(rows: list[_Row]) -> list[_Row]:
    seen: dict[str, _Row] = {}
    for row in rows:
        seen.setdefault(row.stage, row)
    return list(seen.values())


@contextlib.contextmanager
def _part(parts: dict[str, tuple[float, float]], name: str) -> Iterator[None]:
    """Record the wall and CPU seconds of one part of the benchmark."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        parts[name] = (time.perf_counter() - wall, time.process_time() - cpu)


async def run() -> Section:
    """Time each feature on and off in its stage's own code."""
    load = os.getloadavg()[0]
    parts: dict[str, tuple[float, float]] = {}
    with _part(parts, "set-up"):
        pre = build_preprocessor(PreprocessSettings())
        pre.warm_up()
        # One MiniLM for every stage, as each service runs it (one torch thread; torch's setting is process-wide).
        embedder = pre.embedder or Embedder(threads=1)
        resources = GuardResources(embedder)
        resources.warm_up()
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        with _part(parts, "ingest"):
            store = KnowledgeStore(path=Path(tmp) / "qdrant")
            store.warm_up()
            chunks, _ = ingest_sqlite_docs(store, embedder)
        # The stages log a line per request to stderr (safety's verdict): kept, but not on the console.
        with contextlib.redirect_stderr(io.StringIO()):
            with _part(parts, "preprocess"):
                typo_rows, typo_note = await _preprocess(pre)
            with _part(parts, "grounding"):
                grounding_rows, grounding_note, grounder, grounding_figures = await _grounding(pre, store, chunks)
                grounded = await grounder.process(pre.process(_request(SAFETY_PROMPT, 0, tenant=KB_TENANT)))
            with _part(parts, "safety"):
                safety_rows, alone_rows, safety_note = await _safety(grounded, resources)
            with _part(parts, "postprocess"):
                output_rows, output_note = await _postprocess()
        store.close()
    rows = typo_rows + grounding_rows + safety_rows + output_rows
    wall = sum(w for w, _ in parts.values())
    split = ", ".join(f"{name} {w:.0f} ({c:.0f})" for name, (w, c) in parts.items())
    body = "\n\n".join(
        [
            (
                "Each feature on and off in its stage's own code (in-process, no broker), same inputs, after "
                "warm-up, interleaved; cost = p50 on − p50 off (ms per request, wall clock); the last column is the "
                "same from the process's CPU time per request, which other work on the machine hardly moves. Load "
                "average when it started: "
                f"{load:.1f}, when it ended: {os.getloadavg()[0]:.1f}, on {os.cpu_count()} cores. It took "
                f"{wall:.0f} s; wall (CPU) seconds per part: {split}."
            ),
            table(
                ["feature", "stage", "p50 on", "p50 off", "cost ms", "cost, CPU ms"],
                [[r.feature, r.stage, r.on.p50, r.off.p50, r.cost, r.cpu_cost] for r in rows],
            ),
            (
                "Noise: the p50 of a stage's runs with every feature on, even rounds against odd rounds, differed by "
                + ", ".join(f"{r.stage} {r.noise:.2f}" for r in _first_per_stage(rows))
                + " ms; a cost smaller than its stage's noise is not resolved by this run."
            ),
            "Each safety check alone (every other check off), p50 ms of `SafetyChecker.process`:",
            table(["check", "p50 alone", "alone − none", "alone − none, CPU"], alone_rows),
            "\n".join(f"- {note}" for note in (typo_note, grounding_note, safety_note, output_note)),
        ]
    )
    figures = {f"{r.key}_cost_ms": r.cost for r in rows} | {f"{r.key}_cpu_cost_ms": r.cpu_cost for r in rows}
    figures |= {f"{r.key}_on_p50_ms": r.on.p50 for r in rows}
    figures |= {f"{r.stage}_noise_ms": r.noise for r in _first_per_stage(rows)} | grounding_figures
    return Section("Feature costs (on − off, ms per request)", body, figures)
