"""Tests for the files and tables every report shares."""

from __future__ import annotations

from pathlib import Path

from shared.eval.report_files import markdown_table, paired_bars, pyplot, save_figure, write_outputs


def test_markdown_table_has_header_rule_rows_and_a_blank_line() -> None:
    """One header, one rule of the right width, a line per row, then a blank line."""
    assert markdown_table(["a", "b"], [["1", "2"]]) == ["| a | b |", "|---|---|", "| 1 | 2 |", ""]


def test_without_a_chart_only_markdown_and_json_are_written(tmp_path: Path) -> None:
    """No chart: the Markdown is told so (None) and no PNG appears."""
    seen: list[str | None] = []

    def markdown(chart: str | None) -> str:
        seen.append(chart)
        return "# r\n"

    paths = write_outputs(tmp_path, "r", markdown=markdown, payload='{"x": 1}', chart=None)
    assert paths == [tmp_path / "r.md", tmp_path / "r.json"]
    assert seen == [None]
    assert (tmp_path / "r.json").read_text() == '{"x": 1}\n'


def test_a_drawn_chart_is_written_and_embedded(tmp_path: Path) -> None:
    """A real matplotlib chart lands as r.png and the Markdown gets its name."""
    plt = pyplot()
    assert plt is not None

    def chart(path: Path) -> bool:
        fig, axis = plt.subplots()
        paired_bars(axis, ["x", "y"], ([1.0, 2.0], [3.0, 4.0]), ("p50", "p95"))
        save_figure(plt, fig, path)
        return True

    paths = write_outputs(tmp_path, "r", markdown=lambda c: f"![chart]({c})\n", payload="{}", chart=chart)
    assert tmp_path / "r.png" in paths
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "r.md").read_text() == "![chart](r.png)\n"
