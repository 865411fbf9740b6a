import pytest

from services.postprocess.citations import attribute_sources, is_marker_only, map_citations
from shared.contracts.envelope import Document

DOCS = [
    Document(id="d1", source="kb/paris_facts.md", score=0.9, text="Paris is the capital."),
    Document(id="d2", source="https://example.org/wiki/Seine", score=0.8, text="The Seine."),
]


class TestMapCitations:
    def test_marks_map_to_documents_in_prompt_order(self) -> None:
        """[n] is the n-th grounding document; citations come in order of first use, once each."""
        result = map_citations("The Seine [2] flows through Paris [1][2].", DOCS)
        assert result.text == "The Seine [2] flows through Paris [1][2]."
        assert [(c.number, c.document_id, c.source) for c in result.citations] == [
            (2, "d2", "https://example.org/wiki/Seine"),
            (1, "d1", "kb/paris_facts.md"),
        ]
        assert [c.title for c in result.citations] == ["Seine", "paris facts"]
        assert result.removed == []

    def test_numbers_not_given_are_removed(self) -> None:
        """Invented numbers go, alone or inside a group, with the space before them."""
        result = map_citations("Paris [3]. Seine [2, 9]. Old [0].", DOCS)
        assert result.text == "Paris. Seine [2]. Old."
        assert result.removed == [3, 9, 0]
        assert [c.number for c in result.citations] == [2]

    def test_without_documents_every_mark_goes(self) -> None:
        """With no grounding documents, no reference is real."""
        assert map_citations("Paris [1].", []).text == "Paris."

    def test_code_and_links_are_not_citations(self) -> None:
        """Indexes in code and Markdown links keep their brackets."""
        text = "Use `xs[5]` and [4](https://x.org) and\n[4]: https://x.org\n```\nys[7]\n```"
        result = map_citations(text, DOCS)
        assert result.text == text
        assert result.citations == []


LIMITS = [
    Document(id="w", source="docs/wal.html", score=0.9, text="WAL mode does not work over a network filesystem."),
    Document(
        id="l",
        source="docs/limits.html",
        score=0.8,
        text="The maximum depth of trigger recursion was limited by default to 1000 in SQLite.",
    ),
]


class TestAttributeSources:
    def test_an_unmarked_answer_cites_the_document_its_sentence_comes_from(self) -> None:
        """The sentence's terms and its number are in limits.html: that is the citation, marked inferred."""
        [citation] = attribute_sources("The default maximum trigger recursion depth in SQLite is 1000.", LIMITS)
        assert (citation.number, citation.document_id, citation.inferred) == (2, "l", True)

    def test_a_wrong_number_is_not_credited_to_the_document(self) -> None:
        """Same words, another number: the document does not support the sentence."""
        assert attribute_sources("The default maximum trigger recursion depth in SQLite is 500.", LIMITS) == []

    def test_answers_from_elsewhere_and_short_ones_cite_nothing(self) -> None:
        """Unrelated sentences, and sentences of fewer than three content terms, credit no document."""
        assert attribute_sources("Paris is the capital of France and a large city.", LIMITS) == []
        assert attribute_sources("Yes.", LIMITS) == []

    def test_each_sentence_credits_its_own_document_in_order_of_use(self) -> None:
        """Two sentences from two documents: both cited, in the order the answer uses them."""
        text = "Trigger recursion depth in SQLite is limited to 1000 by default. WAL mode does not work over a network."
        assert [c.document_id for c in attribute_sources(text, LIMITS)] == ["l", "w"]


class TestIsMarkerOnly:
    @pytest.mark.parametrize(
        "text", ["[1]", "[T1]", " [1]. ", "[1][2]", "[1, 2]", "Source: [2]", "Sources: [1], [3].", "See [doc 2]."]
    )
    def test_marks_alone_are_no_answer(self, text: str) -> None:
        """Reference marks, with at most a word that introduces them, answer nothing (issue 26's bare [1])."""
        assert is_marker_only(text)

    @pytest.mark.parametrize(
        "text",
        ["", "The wall is 412 metres long [1].", "412 [1]", "At 07:40.\nSource: [1]", "I don't know.", "[a link]"],
    )
    def test_an_answer_with_marks_is_an_answer(self, text: str) -> None:
        """A word or a number outside the marks is an answer; an empty text or one with no mark is not this case."""
        assert not is_marker_only(text)
