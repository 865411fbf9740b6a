from pathlib import Path

import pytest

from shared.cli.main import main
from shared.knowledge.store import KnowledgeStore


@pytest.fixture
def qdrant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "qdrant"
    monkeypatch.setenv("LLMOPS_QDRANT_PATH", str(path))
    monkeypatch.delenv("LLMOPS_QDRANT_URL", raising=False)
    return path


class TestIngestCommand:
    def test_ingest_reingest_delete_directly(
        self, tmp_path: Path, qdrant: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With no stack holding the store, ingest writes it directly; again is a no-op; --delete empties it."""
        docs = tmp_path / "docs"
        (docs / "sub").mkdir(parents=True)
        (docs / "a.md").write_text("# A\n\nThe answer to the riddle is seven.\n")
        (docs / "sub" / "b.txt").write_text("Bees make honey in the summer.\n")
        assert main(["ingest", str(docs), "--tenant", "acme"]) == 0
        first = capsys.readouterr()
        assert "2 sources, 2 chunks (2 new, 0 removed) for tenant 'acme'" in first.out
        assert "directly" in first.out
        assert "chunk" in first.err  # the progress bar

        assert main(["ingest", str(docs), "--tenant", "acme"]) == 0
        assert "(0 new, 0 removed)" in capsys.readouterr().out

        assert main(["ingest", "--delete", str(docs / "a.md"), "--tenant", "acme"]) == 0
        assert "(0 new, 1 removed)" in capsys.readouterr().out
        store = KnowledgeStore(path=qdrant)
        try:
            assert store.count("acme") == 1
        finally:
            store.close()

    def test_nothing_or_missing(self, tmp_path: Path, qdrant: Path) -> None:
        """No paths, or a path that does not exist, is a usage error."""
        assert main(["ingest"]) == 2
        assert main(["ingest", str(tmp_path / "missing")]) == 2
