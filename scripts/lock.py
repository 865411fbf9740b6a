"""Write requirements/lock.txt: every package `make install` installs, pinned, with the sha256 of each file.

``make lock`` runs it after a change of pyproject.toml or requirements/tools.in. pip-tools (pinned below) runs
in a throwaway virtual environment against the package index alone (a machine's find-links folder is ignored), so
the hashes are those of the files any fresh machine can download: every wheel and sdist of the pinned version.
torch is PyPI's build: its CUDA libraries come with it (nvidia-*, cuda-toolkit) and it runs on a CPU-only machine
as well. The lock is resolved for this interpreter: CPython 3.11 on Linux x86_64.

llama-cpp-python is built from source with special CMake flags (scripts/install_llama_cpp.sh), so it is taken out
of the lock; its dependencies stay in it, and the hash pip-tools found for its sdist must equal the
``SDIST_SHA256`` that install_llama_cpp.sh checks before building (this script fails otherwise).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
TOOLS_IN = ROOT / "requirements" / "tools.in"
LLAMA_SCRIPT = ROOT / "scripts" / "install_llama_cpp.sh"
PIP_TOOLS = "pip-tools==7.6.2"
PIP = "pip==26.3"
# Built locally (install_llama_cpp.sh): kept out of the lock, its sdist hash checked against the script's.
LOCAL_BUILDS = ("llama-cpp-python",)

_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")


def split_entries(text: str) -> tuple[list[str], list[list[str]]]:
    """The header lines, and each entry of a pip-compile output as its lines (pin, hashes, ``# via`` comments)."""
    header: list[str] = []
    entries: list[list[str]] = []
    for line in text.splitlines():
        if _ENTRY.match(line):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
        else:
            header.append(line)
    return header, entries


def entry_name(entry: list[str]) -> str:
    """The normalized project name of an entry."""
    match = _ENTRY.match(entry[0])
    if match is None:
        msg = f"not a pinned entry: {entry[0]!r}"
        raise ValueError(msg)
    return re.sub(r"[-_.]+", "-", match["name"]).lower()


def entry_hashes(entry: list[str]) -> set[str]:
    """The sha256 digests an entry lists."""
    return set(re.findall(r"--hash=sha256:([0-9a-f]{64})", "\n".join(entry)))


def script_sdist_hash() -> str:
    """The sdist sha256 install_llama_cpp.sh checks before building."""
    match = re.search(r"^SDIST_SHA256=([0-9a-f]{64})$", LLAMA_SCRIPT.read_text(), re.MULTILINE)
    if match is None:
        msg = f"{LLAMA_SCRIPT}: no SDIST_SHA256=<64 hex digits> line"
        raise SystemExit(msg)
    return match[1]


def compile_lock(workdir: Path, *, upgrade: bool) -> str:
    """Run pip-compile in a throwaway venv under ``workdir``; the raw output.

    pip-compile keeps the pins of an existing output file: the committed lock is its starting point, so a
    change to pyproject.toml moves only what it must, unless ``upgrade``.
    """
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603 - fixed argv
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, PIP], check=True)  # noqa: S603 - fixed argv
    subprocess.run([*pip, PIP_TOOLS], check=True)  # noqa: S603 - fixed argv
    out = workdir / "lock.txt"
    if LOCK.is_file() and not upgrade:
        out.write_text(LOCK.read_text())
    cmd = [
        str(venv / "bin" / "pip-compile"),
        "--quiet",
        "--generate-hashes",
        "--allow-unsafe",  # pip and setuptools too: the installer and the build backend are locked as well
        "--strip-extras",
        "--no-emit-index-url",
        "--no-emit-find-links",  # they come from the machine's pip configuration, not from the lock
        # Hashes from the index every time: a kept pin's old hashes may be of a file the index does not serve
        # (torch 2.13.0+cpu's local wheel was kept for torch 2.13.0, which pip-tools takes for the same version).
        "--no-reuse-hashes",
        "--extra",
        "dev",
        *(["--upgrade"] if upgrade else []),
        "--output-file",
        str(out),
        "pyproject.toml",
        str(TOOLS_IN.relative_to(ROOT)),
    ]
    # The index alone: a wheel only one machine's find-links folder holds would make the lock uninstallable elsewhere.
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock", "PIP_FIND_LINKS": "", "PIP_NO_INDEX": ""}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)  # noqa: S603 - fixed argv
    return out.read_text()


def finish(raw: str) -> str:
    """The lock without the locally built packages, after checking llama-cpp-python's sdist hash."""
    header, entries = split_entries(raw)
    kept = []
    for entry in entries:
        if entry_name(entry) not in LOCAL_BUILDS:
            kept.append(entry)
            continue
        expected = script_sdist_hash()
        if expected not in entry_hashes(entry):
            msg = (
                f"{entry[0].split()[0]}: the sdist hashes on the index are {sorted(entry_hashes(entry))}, "
                f"install_llama_cpp.sh checks {expected}: update SDIST_SHA256 (and VERSION) there"
            )
            raise SystemExit(msg)
    note = [
        "#",
        "# Installed by `make install` with: pip install --require-hashes --no-deps -r requirements/lock.txt",
        "# Left out: llama-cpp-python, built from its sdist by scripts/install_llama_cpp.sh (sdist sha256 checked",
        "# there); the project itself (pip install --no-deps --no-build-isolation -e .).",
        "# Resolved against the index alone: torch is PyPI's build (with its CUDA libraries), which runs on CPU too.",
    ]
    lines = [*header[:-1], *note, header[-1]] if header and header[-1] == "#" else [*header, *note]
    return "\n".join([*lines, *("\n".join(e) for e in kept)]).rstrip("\n") + "\n"


def main() -> None:
    """Compile, check, and write requirements/lock.txt."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upgrade", action="store_true", help="take the newest allowed versions (else the lock's pins are kept)"
    )
    args = parser.parse_args()
    if sys.version_info[:2] != (3, 11):
        raise SystemExit("run with Python 3.11: the lock is resolved for the interpreter that runs pip-compile")
    with tempfile.TemporaryDirectory(prefix="llmops-lock-") as tmp:
        lock = finish(compile_lock(Path(tmp), upgrade=args.upgrade))
    LOCK.write_text(lock)
    print(f"wrote {LOCK.relative_to(ROOT)}: {len(split_entries(lock)[1])} packages")


if __name__ == "__main__":
    main()
