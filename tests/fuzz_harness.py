"""The fuzz harness (``scripts/fuzz_intake.py``) as a module for tests, and hostile records built with it."""

from __future__ import annotations

import importlib.util
import random

from services.preprocess.intake import parse_request
from shared.contracts.errors import PipelineError
from shared.runtime.records import ReceivedRecord
from tests.infra.helpers import ROOT

_spec = importlib.util.spec_from_file_location("fuzz_intake", ROOT / "scripts" / "fuzz_intake.py")
assert _spec is not None
assert _spec.loader is not None
fuzz_intake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_intake)

_RECORD = ReceivedRecord(topic="llmops.requests", partition=0, offset=0, key=None)


def refused(raw: bytes) -> bool:
    """Whether the request intake refuses ``raw`` (an error answer and a DLQ record)."""
    try:
        parse_request(raw, _RECORD)
    except PipelineError:
        return True
    return False


def fuzzed_records(count: int, *, seed: int) -> list[tuple[str, bytes]]:
    """(what, raw) for the committed corpus and ``count`` JSON objects the harness builds from seeded bytes,
    those the intake refuses: hostile records no one wrote by hand, for the tests on the real broker."""
    rng = random.Random(seed)  # noqa: S311 - repeatable inputs, not a secret
    corpus = [
        (f"corpus-{path.name}", fuzz_intake.as_input(path.read_bytes()))
        for path in sorted(fuzz_intake.CORPUS.iterdir())
    ]
    built = [(f"built-{i}", fuzz_intake.as_input(b"\x01" + rng.randbytes(rng.randint(8, 400)))) for i in range(count)]
    return [(what, raw) for what, raw in corpus + built if refused(raw)]
