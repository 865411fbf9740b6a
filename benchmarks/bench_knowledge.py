"""Knowledge-base answers: retrieval hit rate and answer accuracy per prompt template and model (issue 26).

The question set is ``evals/knowledge.yaml``: 14 short Markdown documents about invented harbor towns
(facts no model can know, each with a near-duplicate distractor) and 35 questions. The documents are
ingested the way ``llmops ingest`` does (chunked, embedded with MiniLM, written to Qdrant local mode),
then every question is answered in-process by the stages' own logic: the grounding stage's ``Grounder``
(retrieval, entities, the template), inference's ``LlamaEngine`` and postprocess's ``Finisher`` (polish,
citations, output checks, and the marker-only check). What the client would be sent is scored.

Next to the templates, on the same model in the same run, the naive baseline: the 3 nearest chunks by
cosine and one system line, no citation instruction, its raw completion scored.

Figures per row: retrieval hit (the question's document is among the chunks in the prompt), accuracy
(the answer holds the fact), marker-only (the raw completion is only citation marks, e.g. ``[1]``;
postprocess answers those with an ``empty_answer`` error, so they are never delivered and count as
wrong), cited (the answer's citations name the question's document).

``LLMOPS_BENCH_KNOWLEDGE_MODELS`` and ``LLMOPS_BENCH_KNOWLEDGE_TEMPLATES`` (comma-separated) narrow a run;
``LLMOPS_BENCH_KNOWLEDGE_CASES`` takes the first N questions (or those named, comma-separated);
``LLMOPS_BENCH_KNOWLEDGE_DUMP`` names a JSON Lines file to write every answer to.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.report import Section, machine_summary, percentile, table
from services.grounding.entities import EntityExtractor
from services.grounding.grounder import Grounder
from services.grounding.memory import ConversationMemory
from services.grounding.settings import GroundingSettings
from services.grounding.stage import build_grounder
from services.inference.engine import LlamaEngine
from services.inference.params import GenerationParams, resolve_params
from services.postprocess.citations import is_marker_only
from services.postprocess.finisher import EmptyAnswerError, Finisher
from services.postprocess.output_checks import OutputChecker
from shared.contracts.envelope import (
    ChatMessage,
    Completion,
    Document,
    Envelope,
    Prepared,
    Request,
    SamplingParams,
)
from shared.eval.expectations import check_cites, check_contains
from shared.eval.results import Outcome
from shared.eval.suite import Case, Suite, load_suite
from shared.knowledge.chunking import Chunker
from shared.knowledge.ingest import IngestWriter, prepare
from shared.knowledge.settings import KnowledgeSettings
from shared.knowledge.store import KnowledgeStore
from shared.knowledge.tokens import TokenCounter
from shared.models.chat_render import render_plain
from shared.models.model_store import verified_path
from shared.models.registry import ModelEntry, ModelRegistry
from shared.runtime.settings import CoreSettings
from shared.text.embedder import Embedder

__all__ = ["NAIVE", "Answer", "Score", "naive_messages", "run", "score_answers"]

_SUITE = Path(__file__).resolve().parents[1] / "evals" / "knowledge.yaml"
#: The templates compared; "default" is whatever version the pipeline serves now.
_TEMPLATES = ("default", "default@2", "cite-after@1", "concise", "one-line@1")
#: The baseline's name in the tables.
NAIVE = "naive (top-3, one line)"
_NAIVE_K = 3
_NAIVE_SYSTEM = "Answer the question using the context below."


@dataclass(frozen=True)
class Answer:
    """One question answered one way: what the client got, and what the figures need."""

    case_id: str
    text: str
    citations: list[str]
    hit: bool
    marker_only: bool
    error: str | None
    latency_ms: float
    raw: str = ""


@dataclass
class Score:
    """The figures of one (model, prompt) row."""

    model: str
    prompt: str
    answers: list[Answer] = field(default_factory=list)
    hits: float = 0.0
    accuracy: float = 0.0
    marker_only: float = 0.0
    cited: float = 0.0
    p50_ms: float = 0.0


def naive_messages(question: str, chunks: Sequence[str]) -> list[ChatMessage]:
    """The baseline prompt: one system line and the chunks, then the question."""
    context = "\n\n".join(chunks)
    return [
        ChatMessage(role="system", content=f"{_NAIVE_SYSTEM}\n\n{context}"),
        ChatMessage(role="user", content=question),
    ]


def score_answers(model: str, prompt: str, cases: Sequence[Case], answers: Sequence[Answer]) -> Score:
    """Hit rate, accuracy, marker-only share and citation rate of one row; facts as the eval suite checks them."""
    by_id = {c.id: c for c in cases}
    correct = cited = 0
    for answer in answers:
        expect = by_id[answer.case_id].expect
        outcome = Outcome(text=answer.text, citations=answer.citations)
        correct += answer.error is None and check_contains(expect.contains or [], outcome).passed
        cited += expect.cites is not None and check_cites(expect.cites, outcome).passed
    n = max(len(answers), 1)
    return Score(
        model=model,
        prompt=prompt,
        answers=list(answers),
        hits=sum(a.hit for a in answers) / n,
        accuracy=correct / n,
        marker_only=sum(a.marker_only for a in answers) / n,
        cited=cited / n,
        p50_ms=percentile([a.latency_ms for a in answers], 50),
    )


def _source_hit(case: Case, sources: Sequence[str]) -> bool:
    expected = case.expect.cites or ""
    return any(s == expected or s.endswith("/" + expected) for s in sources)


class _Bench:
    """The ingested store, the stage logic and one resident model."""

    def __init__(self, suite: Suite, store: KnowledgeStore, embedder: Embedder, grounder: Grounder) -> None:
        self.suite = suite
        self.store = store
        self.embedder = embedder
        self.grounder = grounder
        checker = OutputChecker()
        self.finisher = Finisher(checker)
        self.finisher.warm_up()
        self.engine: LlamaEngine | None = None
        self.entry: ModelEntry | None = None

    def load(self, entry: ModelEntry, path: Path) -> None:
        if self.engine is not None:
            self.engine.close()
        self.entry = entry
        self.engine = LlamaEngine(entry, path)
        self.engine.warm_up()

    def params(self) -> GenerationParams:
        """The suite's sampling parameters over the model's defaults, as inference resolves them."""
        assert self.entry is not None  # noqa: S101 - load() first
        return resolve_params(SamplingParams.model_validate(self.suite.defaults), self.entry, n_ctx=self.entry.n_ctx)

    def _envelope(self, case: Case, template: str) -> Envelope:
        assert self.entry is not None  # noqa: S101 - load() first
        question = case.messages[-1]["content"]
        messages = [ChatMessage(role="user", content=question)]
        request = Request(messages=messages, model=self.entry.name, metadata={"template": template})
        env = Envelope(conversation_id=case.id, tenant=self.suite.tenant, request=request)
        env.prepared = Prepared(
            messages=messages,
            text=question,
            model=self.entry.name,
            token_count=len(question) // 3 + 16,
            token_budget=self.entry.n_ctx - self.params().max_tokens,
        )
        return env

    async def answer(self, case: Case, template: str | None) -> Answer:
        """Answer ``case`` with ``template`` (None: the naive baseline) and finish it as postprocess would."""
        assert self.engine is not None  # noqa: S101 - load() first
        env = self._envelope(case, template or "default")
        question = case.messages[-1]["content"]
        t0 = time.perf_counter()
        if template is None:
            hits = self.store.search(self.suite.tenant, self.embedder.embed_one(question), limit=_NAIVE_K)
            messages = naive_messages(question, [h.text for h in hits])
            documents = [Document(id=h.id, source=h.source, score=h.score, text=h.text) for h in hits]
        else:
            env = await self.grounder.process(env)
            assert env.grounding is not None  # noqa: S101 - process fills it
            messages, documents = env.grounding.messages, env.grounding.documents
        prompt = render_plain(messages) if env.grounding is None else env.grounding.prompt
        generation = self.engine.generate(messages, prompt, self.params())
        latency_ms = (time.perf_counter() - t0) * 1000
        marker_only = is_marker_only(generation.text)
        hit = _source_hit(case, [d.source for d in documents])
        if template is None:  # the baseline is a script: its raw completion is its answer
            return Answer(case.id, generation.text.strip(), [], hit, marker_only, None, latency_ms, generation.text)
        env.completion = Completion(
            text=generation.text,
            model=self.engine.entry.name,
            tokens_in=generation.tokens_in,
            tokens_out=generation.tokens_out,
            finish_reason=generation.finish_reason,
        )
        try:
            response = self.finisher.finish(env).envelope.response
        except EmptyAnswerError as exc:
            return Answer(case.id, "", [], hit, marker_only, exc.code, latency_ms, generation.text)
        assert response is not None  # noqa: S101 - finish fills it
        sources = [c.source for c in response.citations]
        return Answer(case.id, response.text, sources, hit, marker_only, None, latency_ms, generation.text)


def _ingest(suite: Suite, store: KnowledgeStore, embedder: Embedder, counter: TokenCounter) -> int:
    defaults = KnowledgeSettings()
    chunker = Chunker(max_tokens=defaults.chunk_tokens, overlap=defaults.chunk_overlap, counter=counter)
    writer = IngestWriter(store, embedder)
    chunks = 0
    for source in suite.knowledge:
        for path in source.paths:
            for command in prepare(path, tenant=source.tenant, chunker=chunker, job_id="bench-knowledge"):
                chunks += writer.apply(command).embedded
    return chunks


def _dump(scores: Sequence[Score]) -> None:
    target = os.environ.get("LLMOPS_BENCH_KNOWLEDGE_DUMP")
    if not target:
        return
    with Path(target).open("w", encoding="utf-8") as out:
        for s in scores:
            out.writelines(json.dumps({"model": s.model, "prompt": s.prompt, **asdict(a)}) + "\n" for a in s.answers)


def _cases(suite: Suite, choice: str) -> list[Case]:
    """All cases, the first N (``choice`` a number) or those named (comma-separated ids)."""
    if choice.strip().isdigit():
        return list(suite.cases[: int(choice)])
    named = {c.strip() for c in choice.split(",") if c.strip()}
    return [c for c in suite.cases if c.id in named] if named else list(suite.cases)


def _choice(variable: str, default: Sequence[str]) -> list[str]:
    value = os.environ.get(variable, "")
    return [v.strip() for v in value.split(",") if v.strip()] or list(default)


def _rows(scores: Sequence[Score]) -> list[list[object]]:
    return [
        [
            s.model,
            s.prompt,
            f"{s.hits:.0%}",
            f"**{s.accuracy:.0%}**",
            f"{s.marker_only:.0%}",
            f"{s.cited:.0%}",
            s.p50_ms,
        ]
        for s in scores
    ]


def _failures(scores: Sequence[Score], cases: Sequence[Case]) -> str:
    facts = {c.id: c.expect.contains for c in cases}
    lines = []
    for s in scores:
        wrong = [
            a
            for a in s.answers
            if a.error is not None or not check_contains(facts[a.case_id] or [], Outcome(text=a.text)).passed
        ]
        for a in wrong[:4]:
            shown = f"error `{a.error}`" if a.error else repr(a.text[:90])
            lines.append(f"- {s.model} / {s.prompt} / `{a.case_id}`: {shown}")
    return "\n".join(lines) or "- none"


async def run() -> Section:
    """Ingest the question set's documents, answer every question per model and template, score."""
    suite = load_suite(_SUITE)
    cases = _cases(suite, os.environ.get("LLMOPS_BENCH_KNOWLEDGE_CASES", ""))
    core = CoreSettings()
    registry = ModelRegistry.load(core.registry_path, default=core.default_model)
    models = _choice("LLMOPS_BENCH_KNOWLEDGE_MODELS", registry.names())
    templates = _choice("LLMOPS_BENCH_KNOWLEDGE_TEMPLATES", _TEMPLATES)
    embedder = Embedder()
    embedder.warm_up()
    counter = TokenCounter()
    counter.warm_up()
    entities = EntityExtractor()
    entities.warm_up()
    scores: list[Score] = []
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        store = KnowledgeStore(path=Path(tmp) / "qdrant")
        store.warm_up()
        chunks = _ingest(suite, store, embedder, counter)
        memory = ConversationMemory()
        grounder = build_grounder(GroundingSettings(), store, counter, entities, memory, embedder=embedder)
        bench = _Bench(suite, store, embedder, grounder)
        for model in models:
            entry = registry.get(model)
            bench.load(entry, verified_path(entry, core.models_dir))
            for template in [None, *templates]:
                answers = [await bench.answer(case, template) for case in cases]
                label = NAIVE if template is None else template
                if template == "default":
                    served = grounder.templates.get("default")
                    label = f"default (= {served.id}@{served.version})"
                scores.append(score_answers(model, label, cases, answers))
                print(f"   {model} {label}: {scores[-1].accuracy:.2f}", flush=True)  # noqa: T201 - progress
        store.close()
    _dump(scores)
    header = ["model", "prompt", "retrieval hit", "accuracy", "marker-only", "cites its document", "p50 ms"]
    body = "\n\n".join(
        [
            (
                f"`evals/knowledge.yaml`: {len(cases)} questions over {chunks} chunks of 14 invented documents "
                f"with near-duplicate distractors; greedy decoding, at most {bench.params().max_tokens} tokens; "
                f"{machine_summary().splitlines()[0].removeprefix('- ')}. *marker-only*: the share of raw "
                "completions that are only citation marks; postprocess answers each with an `empty_answer` "
                "error (counted wrong here), so none is delivered. *cites its document*: the answer's citations "
                "(marked or inferred by postprocess) name the question's document; the baseline has none."
            ),
            table(header, _rows(scores)),
            "Wrong answers (first four per row):\n\n" + _failures(scores, cases),
        ]
    )
    figures: dict[str, float] = {}
    for s in scores:
        key = f"{s.model}.{s.prompt.split(' ')[0]}".replace("@", "_v")
        figures[f"{key}.accuracy"] = s.accuracy
        figures[f"{key}.hits"] = s.hits
        figures[f"{key}.marker_only"] = s.marker_only
    return Section("Knowledge-base answers: templates and models against a naive baseline", body, figures)
