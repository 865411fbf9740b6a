"""Benchmarks: ``make bench`` runs every ``benchmarks/bench_*.py`` and writes ``docs/benchmarks.md``.

Each module defines ``async def run() -> Section`` (or a plain ``def run()``); the runner
collects the sections, adds the machine and versions, and writes one Markdown file.
Speed targets are checked here, never in timed unit tests.
"""
