from services.postprocess.citations import map_citations
from shared.messaging.envelope import Document

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
