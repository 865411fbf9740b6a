"""Turning generated token bytes into text pieces, holding back what may be the start of a stop sequence."""

from __future__ import annotations

import codecs
from collections.abc import Sequence

__all__ = ["StopScanner"]


class StopScanner:
    """Accumulates decoded text; ``feed`` returns what is safe to show and whether a stop sequence ended it.

    Multi-byte UTF-8 characters split across tokens are decoded whole; text that could be the
    beginning of a stop sequence is held back until it is known not to be one.

    Example:
        >>> scan = StopScanner(["\\nUser:"])
        >>> scan.feed(b"Paris.\\nUs")
        ('Paris.', False)
        >>> scan.feed(b"er:")
        ('', True)
        >>> scan.text
        'Paris.'

    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._sent = 0
        self.stopped = False

    @property
    def text(self) -> str:
        """The whole text so far, without any stop sequence."""
        return self._buf

    def feed(self, data: bytes) -> tuple[str, bool]:
        """Add the bytes of one token."""
        if self.stopped:
            return "", True
        self._buf += self._decoder.decode(data)
        cut = min((i for i in (self._buf.find(s, self._sent) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self._buf = self._buf[:cut]
            self.stopped = True
            return self._take(len(self._buf)), True
        return self._take(len(self._buf) - self._held()), False

    def finish(self) -> str:
        """The rest, once generation ended without a stop sequence."""
        if not self.stopped:
            self._buf += self._decoder.decode(b"", final=True)
        return self._take(len(self._buf))

    def _held(self) -> int:
        pending = len(self._buf) - self._sent
        held = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, pending), held, -1):
                if self._buf.endswith(stop[:n]):
                    held = n
                    break
        return held

    def _take(self, end: int) -> str:
        piece = self._buf[self._sent : end]
        self._sent = max(self._sent, end)
        return piece
