from pathlib import Path

import pytest

from shared.knowledge.documents import UnsupportedDocumentError, find_documents, load_document


def minimal_pdf(lines: list[str], title: str = "Field Manual") -> bytes:
    """A valid one-page PDF with the given text lines (Helvetica), built by hand."""
    text = " ".join(f"({line}) Tj T*" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


class TestLoadDocument:
    def test_text_paragraphs(self, tmp_path: Path) -> None:
        """Plain text splits on blank lines; the title is the file name."""
        path = tmp_path / "notes.txt"
        path.write_text("First line\ncontinues.\n\nSecond   paragraph.\n")
        doc = load_document(path)
        assert doc.title == "notes"
        assert doc.sections[0].paragraphs == ["First line continues.", "Second paragraph."]
        assert doc.source == str(path.resolve())

    def test_markdown_heading_paths(self, tmp_path: Path) -> None:
        """Markdown headings become nested heading paths and the first H1 is the title."""
        path = tmp_path / "guide.md"
        path.write_text("# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### Linux\n\nApt.\n\n## Use\n\nAsk.\n")
        doc = load_document(path)
        assert doc.title == "Guide"
        assert [(s.heading, s.paragraphs) for s in doc.sections] == [
            ("Guide", ["Intro."]),
            ("Guide > Install", ["Run it."]),
            ("Guide > Install > Linux", ["Apt."]),
            ("Guide > Use", ["Ask."]),
        ]

    def test_html_blocks_under_headings(self, tmp_path: Path) -> None:
        """HTML text is grouped by h1-h6; scripts and styles are dropped; the <title> is the title."""
        path = tmp_path / "page.html"
        path.write_text(
            "<html><head><title>The Page</title><style>p{}</style></head><body>"
            "<h1>Top</h1><p>Hello <b>bold</b> &amp; plain.</p><script>var x;</script>"
            "<h2>Sub</h2><ul><li>one</li><li>two</li></ul></body></html>"
        )
        doc = load_document(path)
        assert doc.title == "The Page"
        assert [(s.heading, s.paragraphs) for s in doc.sections] == [
            ("Top", ["Hello bold & plain."]),
            ("Top > Sub", ["one", "two"]),
        ]

    def test_pdf_text_per_page(self, tmp_path: Path) -> None:
        """PDF text is read page by page with the document's title."""
        path = tmp_path / "manual.pdf"
        path.write_bytes(minimal_pdf(["The valve opens at 40 psi.", "Close it by hand."]))
        doc = load_document(path)
        assert doc.title == "Field Manual"
        assert doc.sections[0].heading == "page 1"
        assert "40 psi" in doc.text

    def test_hash_follows_content(self, tmp_path: Path) -> None:
        """The file hash changes with the content, not with the name."""
        a, b = tmp_path / "a.txt", tmp_path / "b.txt"
        a.write_text("same")
        b.write_text("same")
        assert load_document(a).file_hash == load_document(b).file_hash
        b.write_text("changed")
        assert load_document(a).file_hash != load_document(b).file_hash

    def test_unsupported(self, tmp_path: Path) -> None:
        """Unknown file types are refused with a clear error."""
        path = tmp_path / "image.png"
        path.write_bytes(b"\x89PNG")
        with pytest.raises(UnsupportedDocumentError):
            load_document(path)


class TestFindDocuments:
    def test_folders_recursively(self, tmp_path: Path) -> None:
        """Folders are searched recursively for supported files only."""
        (tmp_path / "sub").mkdir()
        for name in ("a.md", "sub/b.html", "sub/c.png", "d.txt"):
            (tmp_path / name).write_text("x")
        found = [p.relative_to(tmp_path).as_posix() for p in find_documents([tmp_path])]
        assert found == ["a.md", "d.txt", "sub/b.html"]

    def test_missing_path(self, tmp_path: Path) -> None:
        """A path that does not exist is an error, not silently skipped."""
        with pytest.raises(FileNotFoundError):
            list(find_documents([tmp_path / "nope"]))
