"""What the evaluation, replay and canary reports share: Markdown tables, charts and the files written.

Each report is written as ``<stem>.md``, ``<stem>.json`` and, when matplotlib is there, ``<stem>.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "paired_bars", "pyplot", "save_figure", "write_outputs"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table's lines, followed by a blank one."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows), ""]


def pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the Agg backend (no display), or None when matplotlib is not installed."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional: every report is complete without its chart

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return None
    return plt


def paired_bars(
    axis: Any, names: Sequence[str], series: tuple[Sequence[float], Sequence[float]], labels: tuple[str, str]
) -> None:
    """Two bars side by side for each name (e.g. p50 and p95, or original and candidate), with a legend."""
    width = 0.4
    positions = list(range(len(names)))
    for offset, values, label in ((-width / 2, series[0], labels[0]), (width / 2, series[1], labels[1])):
        axis.bar([p + offset for p in positions], list(values), width, label=label)
    axis.set_xticks(positions, list(names), fontsize=8, rotation=15, ha="right")
    axis.legend()


def save_figure(plt: Any, fig: Any, path: Path) -> None:
    """Lay out, write as PNG and release the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(
    out_dir: Path,
    stem: str,
    *,
    markdown: Callable[[str | None], str],
    payload: str,
    chart: Callable[[Path], bool] | None,
) -> list[Path]:
    """Write ``stem``.png (when ``chart`` draws one), ``stem``.md (embedding it) and ``stem``.json; the paths written.

    ``markdown`` gets the chart's file name, or None when there is no chart; ``chart`` is None when
    there is nothing to draw.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    png = out_dir / f"{stem}.png"
    if chart is not None and chart(png):
        written.append(png)
    md = out_dir / f"{stem}.md"
    md.write_text(markdown(png.name if written else None))
    data = out_dir / f"{stem}.json"
    data.write_text(payload if payload.endswith("\n") else payload + "\n")
    return [md, data, *written]
