"""Coverage-guided fuzzing (atheris) of what reads untrusted bytes: the request intake and envelope parsing.

``make fuzz`` runs it for ``FUZZ_SECONDS`` (300 by default) from the committed corpus
``tests/data/fuzz/intake/``; the inputs it finds go to ``.fuzz/intake/`` (not tracked), and
``python scripts/fuzz_intake.py -merge=1 tests/data/fuzz/intake .fuzz/intake`` adds to the corpus those that
reach new coverage. Each input goes through:

- ``services.preprocess.intake.parse_request`` (what a client writes to a request topic),
- ``shared.runtime.records.parse_envelope`` (what every later stage reads),
- ``shared.runtime.records.salvage_routing`` (what a stage reads from a record it cannot parse),

and, for what parses, the envelope's JSON round trip and its public view. The invariants: a refusal is a
``PipelineError`` (an error answer and a DLQ record), never another exception (which would stall a partition
by redelivery); salvage never raises; a parsed envelope serialises and reads back as itself.
``tests/scripts/test_fuzz_intake.py`` replays the corpus through ``check`` in ``make test`` (no atheris needed).

Usage: ``python scripts/fuzz_intake.py [-max_total_time=N] [corpus_dir ...]`` (libFuzzer flags).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "fuzz" / "intake"
DICTIONARY = ROOT / "tests" / "data" / "fuzz" / "intake.dict"
#: Where a run writes what it finds (libFuzzer writes to the first corpus folder it is given).
FINDINGS = ROOT / ".fuzz" / "intake"

#: Field names the parsers know, so structured inputs reach past "unknown field".
FIELDS = (
    "messages", "role", "content", "prompt", "model", "stream", "metadata", "schema_version", "max_tokens",
    "temperature", "top_p", "stop", "seed", "request_id", "conversation_id", "tenant", "reply_to", "deadline",
    "request", "params", "kind", "cache", "safety", "grounding", "trail", "prepared", "completion", "response",
    "chunk", "error", "user", "system", "assistant", "developer", "tool", "template", "name",
)  # fmt: skip
ROLES = ("user", "system", "assistant", "developer", "tool", "")
STRINGS = ("user", "system", "assistant", "llmops.responses", "llmops.requests", "acme", "2026-12-07T10:00:00Z", "")


class ByteReader:
    """Reads choices from fuzz bytes, deterministically (zeros once they run out)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        """The next byte (0 past the end)."""
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value

    def text(self) -> str:
        """A string of up to 47 bytes' worth of UTF-8 (invalid sequences replaced)."""
        size = self.byte() % 48
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk.decode("utf-8", "replace")

    def value(self, depth: int) -> Any:
        """Any JSON value; containers only above depth 6."""
        makers: tuple[Callable[[], Any], ...] = (
            lambda: None,
            lambda: bool(self.byte() & 1),
            lambda: int.from_bytes(bytes(self.byte() for _ in range(4)), "little", signed=True),
            lambda: self.byte() / 7.0,
            self.text,
            lambda: STRINGS[self.byte() % len(STRINGS)],
            lambda: [self.value(depth + 1) for _ in range(self.byte() % 4)],
            lambda: self.obj(depth + 1),
        )
        kind = self.byte() % (len(makers) if depth < 6 else 6)  # noqa: PLR2004 - containers stop at depth 6
        return makers[kind]()

    def obj(self, depth: int) -> dict[str, Any]:
        """A JSON object of up to five keys, most of them field names the parsers know (empty below depth 6)."""
        if depth > 6:  # noqa: PLR2004
            return {}
        keys = [FIELDS[self.byte() % len(FIELDS)] if self.byte() % 8 else self.text() for _ in range(self.byte() % 6)]
        return {key: self.typed(key, depth) if self.byte() % 4 else self.value(depth) for key in keys}

    def typed(self, key: str, depth: int) -> Any:
        """A value of the type the field expects (a chat message list, a role, a number), so parsing goes deeper."""
        if key == "messages":
            count = self.byte() % 3 + 1
            return [{"role": ROLES[self.byte() % len(ROLES)], "content": self.text()} for _ in range(count)]
        if key in {"max_tokens", "seed", "schema_version"}:
            return self.byte() - 16
        if key in {"temperature", "top_p"}:
            return self.byte() / 64.0
        if key == "stream":
            return bool(self.byte() & 1)
        if key in {"request", "params", "metadata"}:
            return self.obj(depth + 1)
        return STRINGS[self.byte() % len(STRINGS)] if self.byte() % 2 else self.text()


def as_input(data: bytes) -> bytes:
    """The bytes the parsers see: ``data`` itself (first byte even), or a JSON object built from it (odd)."""
    if not data or data[0] % 2 == 0:
        return data[1:]
    reader = ByteReader(data[1:])
    return json.dumps(reader.obj(0), ensure_ascii=bool(reader.byte() & 1)).encode("utf-8", "surrogatepass")


class FuzzFindingError(AssertionError):
    """An input broke an invariant: the fuzzer stops and saves it as ``crash-*``."""


def make_check() -> Callable[[bytes], None]:
    """``check(fuzz)``: run one input through every target; raise on a finding (the bug's own error or ours)."""
    # Imported here, so that atheris instruments them (main imports this under instrument_imports).
    from services.preprocess.intake import parse_request  # noqa: PLC0415
    from shared.contracts.envelope import Envelope  # noqa: PLC0415
    from shared.contracts.errors import PipelineError  # noqa: PLC0415
    from shared.contracts.public import public_view  # noqa: PLC0415
    from shared.runtime.records import ReceivedRecord, parse_envelope, salvage_routing  # noqa: PLC0415

    record = ReceivedRecord(topic="llmops.requests", partition=0, offset=0, key=b"conv", timestamp_ms=0)
    parsers: tuple[Callable[[bytes, ReceivedRecord], Envelope], ...] = (parse_request, parse_envelope)

    def check(fuzz: bytes) -> None:
        data = as_input(fuzz)
        for parse in parsers:
            try:
                env = parse(data, record)
            except PipelineError:
                continue  # refused: an error answer and a DLQ record
            if Envelope.model_validate_json(env.model_dump_json()) != env:
                msg = f"{parse.__name__}: the envelope does not read back as itself"
                raise FuzzFindingError(msg)
            public_view(env)
        request_id, reply_to, conversation = salvage_routing(data)
        if not all(isinstance(v, str) for v in (request_id or "", reply_to or "", conversation)):
            msg = f"salvage_routing gave {request_id!r}, {reply_to!r}, {conversation!r}"
            raise FuzzFindingError(msg)

    return check


def main() -> None:
    """Fuzz under atheris (installed by ``make fuzz``)."""
    import atheris  # noqa: PLC0415 - only for the fuzz run

    with atheris.instrument_imports(include=["services.preprocess", "shared.runtime", "shared.contracts"]):
        check = make_check()
    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        FINDINGS.mkdir(parents=True, exist_ok=True)
        argv += [str(FINDINGS), str(CORPUS)]
    if not any(arg.startswith("-dict=") for arg in argv):
        argv.append(f"-dict={DICTIONARY}")
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
