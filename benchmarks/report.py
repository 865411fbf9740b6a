"""What a benchmark returns, and the machine description written above the results."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["Section", "machine_summary", "percentile", "table"]


@dataclass
class Section:
    """One benchmark's results: a title, a Markdown body and flat figures for regression checks."""

    title: str
    body: str
    figures: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` percentile (0-100) of ``values`` by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def machine_summary() -> str:
    """CPU, cores, Python and the versions of the packages that decide speed."""
    cpu = platform.processor() or platform.machine()
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    packages = ["llama-cpp-python", "faststream", "aiokafka", "torch", "sentence-transformers", "guardrails-ai"]
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return f"- CPU: {cpu}, {os.cpu_count()} cores\n- Python {platform.python_version()}\n- " + ", ".join(versions)
