"""The fuzz corpus (tests/data/fuzz/intake) replayed through the fuzz harness's invariants, without atheris."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.preprocess.intake import parse_request
from shared.contracts.errors import PipelineError
from shared.runtime.records import ReceivedRecord
from tests.fuzz_harness import fuzz_intake

CORPUS = sorted(fuzz_intake.CORPUS.iterdir())
RECORD = ReceivedRecord(topic="llmops.requests", partition=0, offset=0, key=None)


def accepted(path: Path) -> bool:
    try:
        parse_request(fuzz_intake.as_input(path.read_bytes()), RECORD)
    except PipelineError:
        return False
    return True


class TestCorpus:
    @pytest.fixture(scope="class")
    def check(self) -> Callable[[bytes], None]:
        return fuzz_intake.make_check()

    def test_every_input_keeps_the_invariants(self, check: Callable[[bytes], None]) -> None:
        """Each committed input: refusals are PipelineErrors, salvage never raises, envelopes round-trip."""
        assert len(CORPUS) >= 8
        for path in CORPUS:
            check(path.read_bytes())

    def test_the_corpus_reaches_both_answers(self) -> None:
        """Some inputs are valid requests and some are refused, in both of the harness's modes."""
        outcomes = {
            (path.read_bytes()[:1] in {b"", b"\x00"} or path.read_bytes()[0] % 2 == 0, accepted(path))
            for path in CORPUS
        }
        assert outcomes == {(True, True), (True, False), (False, True), (False, False)}

    def test_structured_inputs_are_json_objects_of_known_fields(self) -> None:
        """An odd first byte builds a JSON object from the rest, deterministically."""
        data = bytes([1, 5, 1, 0, 4, 3, 65, 66, 67])
        built = fuzz_intake.as_input(data)
        assert built == fuzz_intake.as_input(data)
        assert built.startswith(b"{")
