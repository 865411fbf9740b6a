"""``python -m benchmarks [NAME...]``: run the benchmarks and write ``docs/benchmarks.md``.

Sections of benchmarks not run this time are kept from the existing file, so running one
benchmark does not erase the others' numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.report import Section, machine_summary

_HERE = Path(__file__).resolve().parent
_OUT = _HERE.parent / "docs" / "benchmarks.md"
_MARK = "<!-- bench:{name} -->"


def _available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in _HERE.glob("bench_*.py"))


def _existing_sections(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in re.finditer(r"<!-- bench:(\w+) -->\n(.*?)(?=\n<!-- bench:|\Z)", text, flags=re.DOTALL):
        found[match.group(1)] = match.group(2).rstrip()
    return found


async def _run_one(name: str) -> Section:
    module = importlib.import_module(f"benchmarks.bench_{name}")
    result = module.run()
    if inspect.isawaitable(result):
        result = await result
    assert isinstance(result, Section)  # noqa: S101 - a benchmark module's contract
    return result


def _write(out: Path, sections: dict[str, str]) -> None:
    header = (
        "# Benchmarks\n\nWritten by `make bench` (`python -m benchmarks`); each section is replaced when its "
        "benchmark runs again.\n\n" + machine_summary() + "\n"
    )
    body = "\n\n".join(_MARK.format(name=n) + "\n" + sections[n] for n in sorted(sections))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + "\n" + body + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmarks (all by default) and rewrite the results file."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(_available())}")
    parser.add_argument("--out", type=Path, default=_OUT)
    args = parser.parse_args(argv)
    names = args.names or _available()
    sections = _existing_sections(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)  # noqa: T201 - progress on the console
        section = asyncio.run(_run_one(name))
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections[name] = f"## {section.title}\n\n_Run {stamp}._\n\n{section.body}"
        for key, value in section.figures.items():
            print(f"{name}.{key}={value:.3f}", flush=True)  # noqa: T201 - machine-readable figures
        # Written after each benchmark, so a long run that stops keeps what it measured.
        _write(args.out, sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
