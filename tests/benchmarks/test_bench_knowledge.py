"""The knowledge benchmark's scoring and its question set, without a model."""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench_knowledge import Answer, naive_messages, score_answers
from shared.eval.suite import load_suite

SUITE = Path(__file__).resolve().parents[2] / "evals" / "knowledge.yaml"


def answer(case_id: str, text: str, **overrides: object) -> Answer:
    fields: dict[str, object] = {
        "citations": [],
        "hit": True,
        "marker_only": False,
        "error": None,
        "latency_ms": 10.0,
    } | overrides
    return Answer(case_id, text, **fields)  # type: ignore[arg-type]


class TestQuestionSet:
    def test_thirty_or_more_questions_each_on_an_ingested_document(self) -> None:
        """Every question names one of the suite's documents as its source, and states the fact it needs."""
        suite = load_suite(SUITE)
        documents = {p.name for k in suite.knowledge for p in k.paths}
        assert len(suite.cases) >= 30
        assert len(documents) == 14
        assert all(p.exists() for k in suite.knowledge for p in k.paths)
        for case in suite.cases:
            assert case.expect.cites in documents
            assert case.expect.contains

    def test_every_fact_is_in_its_document(self) -> None:
        """The expected fact (one of its alternatives) is written in the document the question cites."""
        suite = load_suite(SUITE)
        texts = {p.name: p.read_text().casefold() for k in suite.knowledge for p in k.paths}
        for case in suite.cases:
            for fact in case.expect.contains or []:
                alternatives = [fact] if isinstance(fact, str) else fact
                assert any(a.casefold() in texts[str(case.expect.cites)] for a in alternatives), case.id


class TestScoring:
    def test_rates(self) -> None:
        """Accuracy counts answers that hold the fact; an error or a marker-only answer is wrong."""
        suite = load_suite(SUITE)
        cases = suite.cases[:4]
        ids = [c.id for c in cases]
        answers = [
            answer(ids[0], "The harbor wall of Vessk is 412 metres long.", citations=["/x/vessk-harbor-wall.md"]),
            answer(ids[1], "", error="empty_answer", marker_only=True),
            answer(ids[2], "I do not know.", hit=False),
            answer(ids[3], "It is 388 metres long."),
        ]
        score = score_answers("m", "p", cases, answers)
        assert (score.accuracy, score.hits, score.marker_only, score.cited) == (0.5, 0.75, 0.25, 0.25)

    def test_naive_prompt_is_one_line_and_the_chunks(self) -> None:
        """The baseline: one system line, the chunks after it, then the question."""
        system, user = naive_messages("Q?", ["one", "two"])
        assert system.content == "Answer the question using the context below.\n\none\n\ntwo"
        assert (user.role, user.content) == ("user", "Q?")
