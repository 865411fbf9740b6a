"""The cache benchmark's figure on the evaluation suite's paraphrase cases, with a stand-in embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmarks.bench_cache import _SUITE, _suite_hit_rates
from shared.eval.suite import Suite, load_suite, parse_suite
from shared.text.embedder import EMBEDDING_DIM

# Unit vectors by question: two originals per tenant, each paraphrase placed by hand.
_AXES = {"Capital of France?": 0, "Capital of Japan?": 1, "Shrink the file?": 2, "Largest file?": 3}
_NEAR = {
    "Which city is France's capital?": (0, 0.97),  # its own original: a hit at every threshold
    "Japan's capital city?": (1, 0.88),  # a hit at 0.85 only
    "Make the file smaller?": (3, 0.96),  # closest to the other original of its tenant: a false hit
    "Biggest possible file?": (3, 0.99),
}


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    """Originals on their own axis; a paraphrase at a chosen cosine from one of them."""
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        if text in _AXES:
            out[row, _AXES[text]] = 1.0
        else:
            axis, cosine = _NEAR[text]
            out[row, axis], out[row, -1] = cosine, np.sqrt(1 - cosine**2)
    return out


def case(case_id: str, prompt: str, **more: str) -> dict[str, str]:
    return {"id": case_id, "prompt": prompt, **more}


def suite() -> Suite:
    return parse_suite(
        {
            "name": "s",
            "cases": [
                case("fr", "Capital of France?"),
                case("jp", "Capital of Japan?"),
                case("vac", "Shrink the file?", tenant="docs"),
                case("max", "Largest file?", tenant="docs"),
                case("fr-p", "Which city is France's capital?", category="paraphrase", paraphrase_of="fr"),
                case("jp-p", "Japan's capital city?", category="paraphrase", paraphrase_of="jp"),
                case("vac-p", "Make the file smaller?", tenant="docs", category="paraphrase", paraphrase_of="vac"),
                case("max-p", "Biggest possible file?", tenant="docs", category="paraphrase", paraphrase_of="max"),
            ],
        }
    )


class TestSuiteHitRates:
    def test_hits_and_false_hits_per_threshold(self) -> None:
        """A match on the named original is a hit, one on another original of the tenant a false hit."""
        rows, figures = _suite_hit_rates(suite(), fake_embed)
        by_threshold = {row[0]: row[1:] for row in rows}
        assert by_threshold[0.85] == ["3/4 (75%)", "1/4"]
        assert by_threshold[0.9] == ["2/4 (50%)", "1/4"]
        assert by_threshold[0.95] == ["2/4 (50%)", "1/4"]
        assert figures["suite_paraphrases"] == 4
        assert figures["suite_hit_rate_0.85"] == 0.75
        assert figures["suite_wrong_original_similarity_max"] == np.float32(0.96)

    def test_the_starter_suite_links_every_paraphrase(self) -> None:
        """Every paraphrase case of the starter suite names the case it rewords, of the same tenant."""
        starter = load_suite(_SUITE)
        by_id = {c.id: c for c in starter.cases}
        paraphrases = [c for c in starter.cases if c.category == "paraphrase"]
        assert paraphrases
        for case in paraphrases:
            assert case.paraphrase_of in by_id, case.id
            assert by_id[case.paraphrase_of].tenant == case.tenant, case.id
