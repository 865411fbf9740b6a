"""Choosing among overlapping findings: the first listed wins, in time linear in what was found (issue 23).

Every guard lists its candidates in priority order and keeps those that overlap none kept before.
Checked pairwise that is quadratic: 30,000 addresses in an answer took minutes of postprocess's CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["first_non_overlapping"]

T = TypeVar("T")
_FREE = 0
_TAKEN = 1


def first_non_overlapping(candidates: Iterable[T], bounds: Callable[[T], tuple[int, int]]) -> list[T]:
    """The candidates (in the order given) that overlap no earlier kept one, sorted by start.

    A byte per text position marks what is taken: each candidate costs its own length, so the whole
    choice is linear in the candidates' lengths, whatever their order.

    Example:
        >>> first_non_overlapping([(2, 5), (0, 3), (5, 6)], lambda s: s)
        [(2, 5), (5, 6)]

    """
    items = [(item, *bounds(item)) for item in candidates]
    taken = bytearray(max((end for _, _, end in items), default=0))
    kept: list[tuple[int, T]] = []
    for item, start, end in items:
        if end <= start:
            if start >= len(taken) or taken[start] == _FREE:  # an empty span overlaps only what covers it
                kept.append((start, item))
            continue
        if taken.find(_TAKEN, start, end) == -1:
            taken[start:end] = b"\x01" * (end - start)
            kept.append((start, item))
    kept.sort(key=lambda pair: pair[0])
    return [item for _, item in kept]
