"""Cleaning model output: leaked template tokens, invented turns, loops, truncated endings, Markdown, grammar.

Every step is a plain function (text in, text out); ``polish_answer`` runs them in order
and records the name of each step that changed the text. Code blocks, inline code, URLs,
placeholders and citation marks are masked (``protect``) before the prose rules run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from services.postprocess.grammar import GRAMMAR_RULES
from services.postprocess.protect import SENTINEL, mask
from shared.text.whitespace import tidy_whitespace

__all__ = [
    "Polished",
    "balance_code_fences",
    "cut_loops",
    "normalize_lists",
    "polish_answer",
    "strip_template_tokens",
    "trim_truncated",
    "turn_start",
]

# Special tokens of common chat templates (ChatML, Gemma, Llama 2/3, Mistral, Phi) that must never reach a user.
_TEMPLATE_TOKENS = re.compile(
    r"<\|(?:im_start|im_end|im_sep|endoftext|eot_id|eom_id|start_header_id|end_header_id|begin_of_text|end_of_text"
    r"|assistant|user|system|end|fim_prefix|fim_middle|fim_suffix|file_sep|repo_name|python_tag)\|>"
    r"|<(?:start_of_turn|end_of_turn|bos|eos|pad|unk)>|</?s>|\[/?INST\]|<<\/?SYS>>"
)
# Role labels right after a ChatML/Gemma start token ("<|im_start|>assistant\n", "<start_of_turn>model\n").
_TOKEN_ROLE = re.compile(r"(?:<\|im_start\|>|<start_of_turn>)(?:assistant|model|user|system)?[ \t]*\n?")
# A model that starts writing the user's next turn, or goes on after its end-of-turn token: cut there.
# The label is found from the last newline before it (a line's own blanks, no backtracking): ``\n\s*`` tried from
# each newline of a long blank run was quadratic (issue 23); ``turn_start`` moves back to the run's first newline.
_NEXT_TURN_LABEL = re.compile(r"\n[^\S\n]*+(?:User|USER|Human|HUMAN)\s*+:")
_NEXT_TURN_TOKEN = re.compile(
    r"(?<=\S)\s*(?:<\|im_end\|>|<end_of_turn>|<\|eot_id\|>|<\|endoftext\|>|</s>|<\|im_start\|>|<start_of_turn>)"
    r"(?=\s*\S)",
)
_ROLE_PREFIX = re.compile(r"^\s*(?:Assistant|ASSISTANT|assistant|model|AI)\s*:\s*")


@dataclass
class Polished:
    """The polished answer, the names of the steps that changed it, and whether its end was cut."""

    text: str
    changes: list[str] = field(default_factory=list)
    truncated: bool = False


def strip_template_tokens(text: str) -> str:
    """Remove chat-template special tokens (and the role label a start token carries)."""
    return _TEMPLATE_TOKENS.sub("", _TOKEN_ROLE.sub("", text))


def turn_start(text: str, label: re.Pattern[str], token: re.Pattern[str]) -> int | None:
    """Where the first next-turn marker starts (None: there is none), in time linear in ``text``.

    A ``label`` match counts from the first newline of the blank run before it; a ``token`` match from its
    start; whichever comes first.
    """
    starts: list[int] = []
    if (found := label.search(text)) is not None:
        start = found.start()
        while start > 0 and text[start - 1].isspace():
            start -= 1
        starts.append(text.index("\n", start))
    if (found := token.search(text)) is not None:
        starts.append(found.start())
    return min(starts, default=None)


def _cut_next_turn(text: str) -> str:
    start = turn_start(text, _NEXT_TURN_LABEL, _NEXT_TURN_TOKEN)
    return text if start is None else text[:start]


def _strip_role_prefix(text: str) -> str:
    return _ROLE_PREFIX.sub("", text, count=1)


# ---- code fences ------------------------------------------------------------------------------
_FENCE_LINE = re.compile(r"^[ \t]*```", re.MULTILINE)


def balance_code_fences(text: str) -> str:
    """Close a code block the model left open (an odd number of ``` fences)."""
    if len(_FENCE_LINE.findall(text)) % 2 == 0:
        return text
    return text.rstrip() + "\n```"


# ---- repetition loops ---------------------------------------------------------------------------
_LETTER_WORD = re.compile(r"[^\W\d_]{2,}")
_MIN_LOOP_WORDS = 3
# From the first mark of a run only, without backtracking (from every mark of a long run it was quadratic).
_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]++(?=\s)|\n")
# A phrase of one to six words said three times or more in a row ("and so on and so on and so on");
# words of letters only, so that grouped digits (a card number, "1 1 1") are never collapsed.
_PHRASE_LOOP = re.compile(r"\b((?:[^\W\d_]+[ \t,;]+){0,5}?[^\W\d_]+)(?:[ \t,;]+\1\b){2,}(?![\w-])", re.IGNORECASE)
_PHRASE_WORD = re.compile(r"[^\W\d_]+")
_MAX_PHRASE_WORDS = 6
_LIST_MARKER_ONLY = re.compile(r"(?:^|\n)[ \t]*(?:[-*+]|\d{1,3}[.)])?[ \t]*\Z")


def _key(piece: str) -> str | None:
    words = _LETTER_WORD.findall(piece.lower())
    return " ".join(words) if len(words) >= _MIN_LOOP_WORDS else None


def _may_have_phrase_loop(text: str) -> bool:
    """Cheap necessary condition for ``_PHRASE_LOOP``: the same n words three times in a row (n ≤ 6)."""
    words = _PHRASE_WORD.findall(text.lower())
    for n in range(1, _MAX_PHRASE_WORDS + 1):
        for i, (a, b, c) in enumerate(zip(words, words[n:], words[2 * n :], strict=False)):
            if a == b == c and words[i : i + n] == words[i + n : i + 2 * n] == words[i + 2 * n : i + 3 * n]:
                return True
    return False


def cut_loops(text: str) -> str:
    """Cut the text at the first repeated line or sentence; collapse phrases said three times or more.

    Small models fall into loops: the same line or sentence again and again until
    ``max_tokens``. What comes after the first repeat is the loop, so it goes; lines and
    sentences of fewer than three words ("Yes.", table rules) never count as repeats.

    Example:
        >>> cut_loops("Paris is big. It is old. Paris is big. It is old. Paris")
        'Paris is big. It is old.'

    """
    if _may_have_phrase_loop(text):  # the regex ~0.5 ms on a 300-token answer, this check ~0.2
        text = _PHRASE_LOOP.sub(r"\1", text)
    seen: set[str] = set()
    start = 0
    for m in _SENTENCE_END.finditer(text + "\n"):
        piece = text[start : m.end()]
        key = _key(piece)
        if key is not None:
            if key in seen:
                head = text[:start]
                marker = _LIST_MARKER_ONLY.search(head)  # the repeat starts a list item: cut its marker too
                return head[: marker.start()] if marker else head
            seen.add(key)
        start = m.end()
    return text


# ---- truncated endings ------------------------------------------------------------------------
_COMPLETE_END = re.compile(r"(?:[.!?…:]|" + SENTINEL + r".)[\"')\]*_]*\s*\Z")
_BOUNDARY = re.compile(r"[.!?…][\"')\]*_]*(?=\s)|\n")


def trim_truncated(text: str) -> str:
    """Drop an unfinished last sentence (generation stopped at ``max_tokens``); an ellipsis when nothing else is left.

    Example:
        >>> trim_truncated("Paris is the capital. It has about two mill")
        'Paris is the capital.'

    """
    body = text.rstrip()
    if not body or _COMPLETE_END.search(body):
        return text
    match = None
    for match in _BOUNDARY.finditer(body):  # noqa: B007 - the last one is wanted
        pass
    if match is None or not body[: match.end()].strip():
        return body + "…"
    return body[: match.end()].rstrip()


# ---- Markdown lists ----------------------------------------------------------------------------
_ODD_BULLET = re.compile(r"^([ \t]*)[•●▪◦‣∙][ \t]*", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+\S")


def normalize_lists(text: str) -> str:
    """Bullets become ``- ``; a list that follows a paragraph line directly gets a blank line before it."""
    text = _ODD_BULLET.sub(r"\1- ", text)
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if out and _LIST_ITEM.match(line):
            prev = out[-1]
            if prev.strip() and not _LIST_ITEM.match(prev) and not prev.startswith((" ", "\t", "#")):
                out.append("")
        out.append(line)
    return "\n".join(out)


_CLEANUP: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("next_turn", _cut_next_turn),
    ("template_tokens", strip_template_tokens),
    ("role_prefix", _strip_role_prefix),
    ("code_fences", balance_code_fences),
)


def polish_answer(text: str, *, finish_reason: str | None = None) -> Polished:
    """Run every step; ``finish_reason == "length"`` also trims an unfinished last sentence.

    Example:
        >>> polish_answer("Paris.<|im_end|>\\nUser: and Spain?").text
        'Paris.'

    """
    out = Polished(text=text.replace("\r\n", "\n"))

    def apply(name: str, step: Callable[[str], str], current: str) -> str:
        changed = step(current)
        if changed != current:
            out.changes.append(name)
        return changed

    current = out.text
    for name, step in _CLEANUP:
        current = apply(name, step, current)
    masked = mask(current)
    prose = apply("repetition", cut_loops, masked.text)
    if finish_reason == "length":
        out.truncated = True
        prose = apply("truncated_sentence", trim_truncated, prose)
    prose = apply("list_spacing", normalize_lists, prose)
    for name, rule in GRAMMAR_RULES:
        prose = apply(name, rule, prose)
    current = masked.unmask(prose)
    out.text = apply("whitespace", tidy_whitespace, current)
    return out
