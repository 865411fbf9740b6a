"""Streaming rails: hold token chunks back to the next sentence boundary, check, forward in order.

Inference sends a streamed answer as ``kind="chunk"`` envelopes (``seq`` from 0, same Kafka
key) followed by the usual envelope with the whole completion. ``StreamGate`` keeps one
buffer per request: each complete sentence (or line) is cleaned of template tokens, has
the user's values restored, passes the output checks and goes out as a chunk with the
gate's own sequence numbers. A sentence that fails a blocking check ends the stream: a
last chunk flagged ``response.refused`` carries the refusal, and later chunks are dropped.
A repeated sentence (a loop) quietly ends the forwarding; the final answer has it cut too.
Pieces are checked, not polished (grammar rules need the whole answer): the final message
carries the polished text, which a client shows in place of the streamed preview.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field

from services.postprocess.finisher import restore_placeholders
from services.postprocess.output_checks import CheckResult, OutputChecker, OutputContext
from services.postprocess.polish import strip_template_tokens, turn_start
from shared.contracts.envelope import Chunk, Envelope, Response

__all__ = ["StreamGate"]

# The end of a sentence (a mark followed by a space) or of a line; what follows is held back.
_BOUNDARY = re.compile(r"[.!?…][\"')\]*_]*\s+|\n")
_END_TOKEN = re.compile(r"<\|im_end\|>|<end_of_turn>|<\|eot_id\|>|<\|endoftext\|>|</s>")
_END_LABEL = re.compile(r"\n[^\S\n]*+(?:User|Human)\s*+:")  # linear: see ``polish.turn_start``
_LETTERS = re.compile(r"[^\W\d_]{2,}")
_MIN_LOOP_WORDS = 3


@dataclass
class _Stream:
    #: None until a piece with the prompt (the first, ``grounding`` set) arrives: nothing is released before.
    context: OutputContext | None
    #: Whether this replica saw the stream from its first piece (seq 0); one taken over mid-stream did not.
    whole: bool = True
    buffer: str = ""
    last_in_seq: int = -1
    next_seq: int = 0
    ended: bool = False
    refusal: CheckResult | None = None
    seen: set[str] = field(default_factory=set)
    in_code: bool = False


class StreamGate:
    """Per-request buffers of a streamed answer; state lives in this replica (chunks share one key, one partition).

    Example:
        >>> gate = StreamGate(checker)
        >>> gate.on_chunk(chunk_env("Paris is "))  # held back: no sentence yet
        []
        >>> [e.chunk.text for e in gate.on_chunk(chunk_env("big. It"))]
        ['Paris is big. ']

    """

    def __init__(self, checker: OutputChecker, *, max_streams: int = 10_000) -> None:
        self.checker = checker
        self.max_streams = max_streams
        self._streams: OrderedDict[str, _Stream] = OrderedDict()

    def __len__(self) -> int:
        return len(self._streams)

    def _stream(self, env: Envelope) -> _Stream:
        stream = self._streams.get(env.request_id)
        if stream is None:
            stream = _Stream(context=None)
            self._streams[env.request_id] = stream
            while len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)  # the oldest stream was abandoned
        if stream.context is None and env.grounding is not None:
            stream.context = OutputContext.from_envelope(env)
        return stream

    def on_chunk(self, env: Envelope) -> list[Envelope]:
        """The checked chunk to forward (zero or one) for one incoming chunk."""
        if env.chunk is None:
            return []
        stream = self._stream(env)
        if env.chunk.seq <= stream.last_in_seq or stream.ended:
            return []  # a redelivered piece, or the stream was already ended
        if stream.last_in_seq < 0 and env.chunk.seq > 0:
            stream.whole = False  # taken over mid-stream (issue 23): see ``finish``
        stream.last_in_seq = env.chunk.seq
        stream.buffer += env.chunk.text
        if stream.context is None:
            # Checked without the prompt, a leak of it would pass (issue 23): held for the final message,
            # which carries the prompt (a failover that missed the first piece streams nothing, then all).
            return []
        last = None
        for last in _BOUNDARY.finditer(stream.buffer):  # noqa: B007 - the last boundary is wanted
            pass
        if last is None:
            return []
        ready, stream.buffer = stream.buffer[: last.end()], stream.buffer[last.end() :]
        return self._release(env, stream, ready, stream.context)

    def finish(self, env: Envelope) -> tuple[list[Envelope], CheckResult | None]:
        """At the final message: the last chunk (what was still held back) and the refusal if the stream was blocked."""
        stream = self._streams.pop(env.request_id, None)
        if stream is None:
            return [], None
        if stream.context is None:
            stream.context = OutputContext.from_envelope(env)
        if not stream.whole:
            # Taken over mid-stream (a failover): the text held here starts where the previous replica's pieces
            # may already have gone, or not yet: a piece of it would repeat or splice the preview. The final
            # message, which a client shows in place of the preview, carries the whole answer (issue 23).
            return [], None
        out = [] if stream.ended else self._release(env, stream, stream.buffer, stream.context)
        return out, stream.refusal

    def _release(self, env: Envelope, stream: _Stream, text: str, context: OutputContext) -> list[Envelope]:
        end = turn_start(text, _END_LABEL, _END_TOKEN)
        if end is not None:
            text, stream.ended = text[:end], True
        text = self._cut_loop(stream, strip_template_tokens(text))
        if not text.strip():
            return []
        restored = restore_placeholders(text, env.safety)
        checked = self.checker.check(restored.text, context, allowed=restored.spans)
        if checked.blocked_by is not None:
            stream.ended, stream.refusal = True, checked
            response = Response(text=checked.text, refused=True, findings=checked.findings)
            return [self._chunk(env, stream, checked.text, response)]
        return [self._chunk(env, stream, checked.text, None)]

    @staticmethod
    def _cut_loop(stream: _Stream, text: str) -> str:
        """Text up to the first sentence already sent (then the stream ends); code lines may repeat."""
        start = 0
        for m in _BOUNDARY.finditer(text + "\n"):
            piece = text[start : m.end()]
            fences = piece.count("```")
            in_code = stream.in_code or fences > 0
            stream.in_code ^= fences % 2 == 1
            words = _LETTERS.findall(piece.lower())
            if not in_code and len(words) >= _MIN_LOOP_WORDS:
                key = " ".join(words)
                if key in stream.seen:
                    stream.ended = True
                    return text[:start]
                stream.seen.add(key)
            start = m.end()
        return text

    @staticmethod
    def _chunk(env: Envelope, stream: _Stream, text: str, response: Response | None) -> Envelope:
        seq, stream.next_seq = stream.next_seq, stream.next_seq + 1
        return Envelope(
            request_id=env.request_id,
            conversation_id=env.conversation_id,
            tenant=env.tenant,
            reply_to=env.reply_to,
            deadline=env.deadline,
            kind="chunk",
            chunk=Chunk(seq=seq, text=text),
            response=response,
            trail=[*env.trail],
        )
