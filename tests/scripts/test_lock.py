"""requirements/lock.txt (written by scripts/lock.py): every dependency pinned with hashes, and what installs it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from functools import cache

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.infra.helpers import ROOT

_spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
assert _spec is not None
assert _spec.loader is not None
lock_script = importlib.util.module_from_spec(_spec)
sys.modules["lock"] = lock_script
_spec.loader.exec_module(lock_script)

LOCK = ROOT / "requirements" / "lock.txt"
LOCAL_BUILDS = {"llama-cpp-python"}


@cache
def locked() -> dict[str, tuple[Version, set[str]]]:
    """Each locked project: its pinned version and the sha256 digests of its files."""
    _, entries = lock_script.split_entries(LOCK.read_text())
    out: dict[str, tuple[Version, set[str]]] = {}
    for entry in entries:
        name = lock_script.entry_name(entry)
        assert name not in out, f"{name} locked twice"
        out[name] = (Version(entry[0].split("==")[1].split()[0]), lock_script.entry_hashes(entry))
    return out


def declared() -> list[Requirement]:
    """The project's dependencies and its dev extra, as pyproject.toml declares them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


class TestLockFile:
    def test_every_line_is_an_exact_pin_or_a_hash_or_a_comment(self) -> None:
        """No ranges, URLs, editable or option lines: only `name==version \\`, its hashes and comments."""
        for line in LOCK.read_text().splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!]+ \\", stripped) or re.fullmatch(
                r"--hash=sha256:[0-9a-f]{64}( \\)?", stripped
            ), line

    def test_every_package_has_a_hash(self) -> None:
        """pip's --require-hashes needs at least one sha256 per package; every package has one."""
        assert len(locked()) > 50
        assert [name for name, (_, hashes) in locked().items() if not hashes] == []

    def test_every_declared_dependency_is_locked_at_a_version_it_allows(self) -> None:
        """Each dependency of pyproject (and its dev extra) is locked, at a version its specifier accepts."""
        for req in declared():
            name = canonicalize_name(req.name)
            if name in LOCAL_BUILDS:
                continue
            assert name in locked(), f"{req} is not in the lock"
            version, _ = locked()[name]
            assert req.specifier.contains(version, prereleases=True), f"{req}: locked {version}"

    def test_locally_built_packages_are_left_out(self) -> None:
        """llama-cpp-python is built by install_llama_cpp.sh, not installed from the lock."""
        assert not LOCAL_BUILDS & set(locked())

    def test_the_installer_and_build_backend_are_locked(self) -> None:
        """pip and setuptools (the project's build backend, used without build isolation) are hash-locked too."""
        build_requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
        assert "pip" in locked()
        for req in map(Requirement, build_requires):
            assert req.specifier.contains(locked()[canonicalize_name(req.name)][0])

    def test_torch_comes_from_the_index_alone(self) -> None:
        """torch is PyPI's own build (no local version such as +cpu, which only one machine's wheel folder had)."""
        version, hashes = locked()["torch"]
        assert version.local is None
        assert hashes
        assert "find-links" not in LOCK.read_text()

    def test_the_lock_is_closed_under_dependencies(self) -> None:
        """Every requirement of a locked package that is installed at its locked version is itself locked.

        Checked with the installed metadata (extras the lock needs included: faststream[kafka]); packages whose
        installed version differs from the lock are skipped (after `make install` none is).
        """
        extras: dict[str, set[str]] = {}
        for req in declared():
            extras.setdefault(canonicalize_name(req.name), set()).update(req.extras)
        checked = 0
        for name, (version, _) in locked().items():
            try:
                dist = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            if Version(dist.version) != version:
                continue
            checked += 1
            for raw in dist.requires or []:
                req = Requirement(raw)
                wanted = extras.get(name, set()) | {""}
                if req.marker and not any(req.marker.evaluate({"extra": e}) for e in wanted):
                    continue
                dep = canonicalize_name(req.name)
                if dep in LOCAL_BUILDS:
                    continue
                assert dep in locked(), f"{name} needs {req}, which is not locked"
                assert req.specifier.contains(locked()[dep][0], prereleases=True), f"{name} needs {req}"
        if checked < len(locked()) // 2:
            pytest.skip(f"only {checked} of {len(locked())} locked packages installed at their locked version")


class TestInstall:
    def test_make_install_installs_from_the_lock_with_hashes(self) -> None:
        """The Makefile installs the lock with --require-hashes --no-deps and the project without dependencies."""
        makefile = (ROOT / "Makefile").read_text()
        assert "LOCK := requirements/lock.txt" in makefile
        assert "pip install --require-hashes --no-deps -r $(LOCK)" in makefile
        assert "$(PY) -m pip install --no-deps --no-build-isolation -e ." in makefile
        for target in ("$(STAMP):", "install-gpu:"):
            recipe = makefile.split(f"\n{target}", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
            steps = [line.strip() for line in recipe]
            assert steps[0] == "$(LOCK_INSTALL)", target  # before anything else is installed
            assert [s for s in steps if "pip install" in s] == [
                "$(PY) -m pip install --no-deps --no-build-isolation -e ."
            ]
            assert "$(PY) -m pip check" in steps
        venv = makefile.split("\n$(PY):", 1)[1].split("\n\n", 1)[0]
        assert "pip install" not in venv  # no unpinned pip upgrade: pip comes from the lock

    def test_llama_cpp_python_is_the_declared_version_with_a_pinned_sdist_hash(self) -> None:
        """install_llama_cpp.sh builds the version pyproject declares, from an sdist whose sha256 it pins."""
        script = lock_script.LLAMA_SCRIPT.read_text()
        (req,) = [r for r in declared() if canonicalize_name(r.name) == "llama-cpp-python"]
        assert re.search(rf"^VERSION={re.escape(str(next(iter(req.specifier)).version))}$", script, re.MULTILINE)
        assert len(lock_script.script_sdist_hash()) == 64
        assert '--require-hashes -r "$req"' in script


class TestFinish:
    RAW = """#
# This file is autogenerated by pip-compile with Python 3.11
#
aiokafka==0.14.0 \\
    --hash=sha256:{a}
    # via llmops (pyproject.toml)
llama-cpp-python==0.3.36 \\
    --hash=sha256:{b}
    # via llmops (pyproject.toml)
numpy==2.3.0 \\
    --hash=sha256:{c}
    # via
    #   llama-cpp-python
    #   llmops (pyproject.toml)
"""

    def raw(self, sdist: str) -> str:
        return self.RAW.format(a="a" * 64, b=sdist, c="c" * 64)

    def test_llama_cpp_python_is_taken_out_and_its_dependencies_stay(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The locally built package leaves the lock; what it needs stays; a note says how the lock is installed."""
        monkeypatch.setattr(lock_script, "script_sdist_hash", lambda: "b" * 64)
        out = lock_script.finish(self.raw("b" * 64))
        _, entries = lock_script.split_entries(out)
        assert [lock_script.entry_name(e) for e in entries] == ["aiokafka", "numpy"]
        assert "--require-hashes --no-deps" in out
        assert out.endswith("llmops (pyproject.toml)\n")

    def test_a_different_sdist_hash_stops_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the index's sdist is not the one install_llama_cpp.sh pins, no lock is written."""
        monkeypatch.setattr(lock_script, "script_sdist_hash", lambda: "b" * 64)
        with pytest.raises(SystemExit, match="SDIST_SHA256"):
            lock_script.finish(self.raw("d" * 64))
