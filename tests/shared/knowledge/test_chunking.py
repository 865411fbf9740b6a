import pytest

from shared.knowledge.chunking import Chunker, point_id
from shared.knowledge.documents import LoadedDocument, Section
from shared.knowledge.tokens import TokenCounter


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    counter = TokenCounter()
    counter.warm_up()
    return counter


def document(*sections: Section) -> LoadedDocument:
    return LoadedDocument(source="/doc.md", title="Doc", file_hash="h", sections=list(sections))


class TestChunker:
    def test_chunks_respect_the_token_limit(self, counter: TokenCounter) -> None:
        """No chunk is longer than max_tokens, even from one very long paragraph."""
        long = " ".join(f"word{i}" for i in range(600))
        chunks = Chunker(max_tokens=64, overlap=8, counter=counter).split(document(Section("A", [long])))
        assert len(chunks) > 3
        assert all(counter.count(c.text) <= 64 for c in chunks)
        assert [c.position for c in chunks] == list(range(len(chunks)))

    def test_paragraphs_are_packed_whole(self, counter: TokenCounter) -> None:
        """Short paragraphs are packed together and never cut."""
        paragraphs = [f"Paragraph number {i} says something short." for i in range(12)]
        chunks = Chunker(max_tokens=40, overlap=0, counter=counter).split(document(Section("A", paragraphs)))
        texts = "\n\n".join(c.text for c in chunks).split("\n\n")
        assert texts == paragraphs
        assert all(len(c.text.split("\n\n")) >= 2 for c in chunks[:-1])

    def test_sections_start_new_chunks(self, counter: TokenCounter) -> None:
        """A chunk never straddles two headings; each carries its heading path."""
        chunks = Chunker(max_tokens=100, overlap=10, counter=counter).split(
            document(Section("Intro", ["Short intro."]), Section("Intro > Setup", ["Short setup."]))
        )
        assert [(c.heading, c.text) for c in chunks] == [("Intro", "Short intro."), ("Intro > Setup", "Short setup.")]

    def test_consecutive_chunks_overlap(self, counter: TokenCounter) -> None:
        """The next chunk of a section starts with the end of the previous one."""
        paragraphs = [" ".join(f"p{p}w{w}" for w in range(20)) for p in range(6)]
        chunks = Chunker(max_tokens=120, overlap=16, counter=counter).split(document(Section("A", paragraphs)))
        assert len(chunks) >= 2
        last_words = chunks[0].text.split()[-3:]
        assert chunks[1].text.split()[:8] != paragraphs[0].split()[:8]
        assert " ".join(last_words) in chunks[1].text

    def test_bad_overlap(self) -> None:
        """An overlap as large as the chunk is refused."""
        with pytest.raises(ValueError, match="overlap"):
            Chunker(max_tokens=10, overlap=10)


class TestPointId:
    def test_deterministic_and_distinct(self) -> None:
        """The same chunk of the same file version has one id; tenant, version or text change it."""
        base = point_id("t", "/a", "h1", 0, "text")
        assert base == point_id("t", "/a", "h1", 0, "text")
        assert len({base, point_id("u", "/a", "h1", 0, "text"), point_id("t", "/a", "h2", 0, "text")}) == 3
        assert base != point_id("t", "/a", "h1", 0, "other")
