"""``make bench-quick``'s guard: the figures line last, a failure only when over the guard twice running."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import quick

GOOD = {"transport_p50_ms": 26.0, "transport_p99_ms": 33.0, "overhead_p50_ms": 70.0, "overhead_p99_ms": 90.0}
NOISY = GOOD | {"transport_p50_ms": 31.0}
REGRESSED = GOOD | {"transport_p50_ms": 257.0}


def measured(monkeypatch: pytest.MonkeyPatch, *runs: dict[str, float]) -> list[int]:
    """Make the measurement return ``runs`` in turn; returns a list counting the measurements made."""
    calls: list[int] = []
    figures: Iterator[dict[str, float]] = iter(runs)

    async def fake_run() -> dict[str, float]:
        calls.append(1)
        return next(figures)

    monkeypatch.setattr(quick, "_run", fake_run)
    return calls


def test_within_the_guard_passes_after_one_measurement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = measured(monkeypatch, GOOD)
    assert quick.main() == 0
    assert len(calls) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "transport_p50_ms=26.0 transport_p99_ms=33.0 overhead_p50_ms=70.0 overhead_p99_ms=90.0"


def test_one_noisy_measurement_is_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = measured(monkeypatch, NOISY, GOOD)
    assert quick.main() == 0
    assert len(calls) == 2


def test_a_regression_fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    measured(monkeypatch, REGRESSED, REGRESSED)
    assert quick.main() == 1
    captured = capsys.readouterr()
    assert "REGRESSION: transport_p50_ms=257.0 > 3 x 10" in captured.err
    assert captured.out.strip().splitlines()[-1].startswith("transport_p50_ms=257.0 ")
