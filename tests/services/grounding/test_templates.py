from pathlib import Path

import pytest

from services.grounding.templates import TemplateStore, UnknownTemplateError
from shared.contracts.envelope import Document


def render(ref: str, documents: list[Document], client_system: str = "") -> str:
    return (
        TemplateStore.load()
        .get(ref)
        .render(documents=documents, memory=[], entities=[], question="q", client_system=client_system)
    )


DOCS = [
    Document(id="a", source="/kb/a.md", score=0.9, text="Alpha fact.", title="A", heading="Intro"),
    Document(id="b", source="/kb/b.md", score=0.8, text="Beta fact."),
]


class TestTemplateStore:
    def test_packaged_templates(self) -> None:
        """The packaged templates: default v1 (migrated) to v3, concise v1 and v2, cite-after v1, one-line v1."""
        assert TemplateStore.load().names() == [
            "cite-after@1",
            "concise@1",
            "concise@2",
            "default@1",
            "default@2",
            "default@3",
            "one-line@1",
        ]

    def test_concise_v2_no_longer_invites_i_dont_know(self) -> None:
        """v1 told the model to say "I don't know" when unsure; v2 says only that it is brief (and cites context)."""
        assert "I don't know" in render("concise@1", [])
        bare = render("concise", [])
        assert bare == "Answer in at most two sentences."
        assert "cite it like [1]" in render("concise", DOCS)

    def test_default_gives_context_and_asks_for_no_marks(self) -> None:
        """default@3 lists each document under its title and asks for no [n] marks (a 0.5B model answers "[1]")."""
        text = render("default", DOCS, client_system="Answer in French.")
        assert "A — Intro\nAlpha fact." in text
        assert "/kb/b.md\nBeta fact." in text
        assert "cite" not in text
        assert "[1]" not in text
        assert "one full sentence" in text
        assert text.endswith("Answer in French.")

    def test_default_without_documents_is_unchanged(self) -> None:
        """With nothing retrieved, default@3 is default@2's prompt: general questions are asked as before."""
        assert render("default", [], client_system="Be brief.") == render("default@2", [], client_system="Be brief.")

    def test_cite_after_asks_for_the_answer_first(self) -> None:
        """cite-after@1 asks for the answer, then its source on a line of its own."""
        text = render("cite-after", DOCS)
        assert "Write the answer first" in text
        assert "Source: [1]" in text
        assert "[1] A — Intro\nAlpha fact." in text

    def test_one_line_is_the_instruction_and_the_chunks(self) -> None:
        """one-line@1: one instruction line, the chunks' text without titles; without documents, default's prompt."""
        assert render("one-line", DOCS) == "Answer the question using the context below.\n\nAlpha fact.\n\nBeta fact."
        assert render("one-line", []) == render("default", [])

    def test_default_v2_numbers_context_and_asks_for_citations(self) -> None:
        """default@2 numbers each document and asks for [n] citations."""
        text = render("default@2", DOCS, client_system="Answer in French.")
        assert "[1] A — Intro\nAlpha fact." in text
        assert "[2] /kb/b.md\nBeta fact." in text
        assert "cite" in text
        assert "[1]" in text.split("Context:")[0]
        assert text.endswith("Answer in French.")

    def test_without_documents_no_context_section(self) -> None:
        """With nothing retrieved the prompt has no context section."""
        text = render("default", [])
        assert "Context" not in text
        assert "say so" in text

    def test_migrated_v1_is_the_old_prompt(self) -> None:
        """default@1 is the former YAML template's text."""
        assert render("default@1", DOCS).startswith("You are a helpful, accurate assistant.")
        assert "Alpha" not in render("default@1", DOCS)

    def test_latest_or_pinned_version(self, tmp_path: Path) -> None:
        """A bare name is the newest version; name@N pins one."""
        for version in (1, 2):
            (tmp_path / f"x.v{version}.jinja").write_text(f"v{version} {{{{ question }}}}")
        store = TemplateStore.load(tmp_path)
        assert store.get("x").render(question="q") == "v2 q"
        assert store.get("x@1").render(question="q") == "v1 q"

    def test_badly_named_file(self, tmp_path: Path) -> None:
        """A template file without name and version in its name is refused at load."""
        (tmp_path / "x.jinja").write_text("hi")
        with pytest.raises(ValueError, match="name"):
            TemplateStore.load(tmp_path)

    @pytest.mark.parametrize("ref", ["nope", "default@9", "default@x"])
    def test_unknown(self, ref: str) -> None:
        """Unknown names and versions raise."""
        with pytest.raises(UnknownTemplateError):
            TemplateStore.load().get(ref)
