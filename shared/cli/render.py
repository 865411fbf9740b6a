"""How answers are shown in a terminal."""

from __future__ import annotations

from shared.contracts.envelope import Envelope

__all__ = ["format_answer", "format_timings"]


def format_timings(env: Envelope) -> str:
    """One line: each stage's time from the trail, and the end-to-end time."""
    parts = [f"{rec.stage} {rec.duration_ms:.1f} ms" for rec in env.trail]
    if env.trail:
        end = env.trail[-1].started_at.timestamp() * 1000 + env.trail[-1].duration_ms
        parts.append(f"end-to-end {end - env.created_at.timestamp() * 1000:.0f} ms")
    if env.completion is not None and env.completion.tokens_per_s:
        parts.append(f"{env.completion.tokens_out} tokens at {env.completion.tokens_per_s:.1f} tok/s")
    return " · ".join(parts)


def format_answer(env: Envelope) -> str:
    """The answer text, or the error, for a person to read."""
    if env.error is not None:
        return f"error [{env.error.code}] from {env.error.stage}: {env.error.message}"
    if env.response is None:
        return "(no response section)"
    return env.response.text
