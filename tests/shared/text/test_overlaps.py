import time

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.text.overlaps import first_non_overlapping


def _pairwise(candidates: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The definition, checked pair by pair (quadratic)."""
    chosen: list[tuple[int, int]] = []
    for start, end in candidates:
        if all(end <= c_start or start >= c_end for c_start, c_end in chosen):
            chosen.append((start, end))
    return sorted(chosen, key=lambda s: s[0])


_SPAN = st.tuples(st.integers(0, 60), st.integers(1, 15)).map(lambda p: (p[0], p[0] + p[1]))


class TestFirstNonOverlapping:
    @settings(max_examples=400, deadline=None)
    @given(st.lists(_SPAN, max_size=40))
    def test_same_choice_as_the_pairwise_definition(self, candidates: list[tuple[int, int]]) -> None:
        """Earlier candidates win over later overlapping ones, the result in text order, as checked pairwise."""
        assert first_non_overlapping(candidates, lambda s: s) == _pairwise(candidates)

    def test_linear_in_many_findings(self) -> None:
        """60,000 findings (an answer of addresses) are chosen among in well under a second of CPU (issue 23)."""
        candidates = [(i * 7, i * 7 + 6) for i in range(30_000)] + [(i * 7 + 3, i * 7 + 9) for i in range(30_000)]
        t0 = time.process_time()
        kept = first_non_overlapping(candidates, lambda s: s)
        assert time.process_time() - t0 < 1.0
        assert len(kept) == 30_000
