"""Hostile inputs (issue 23): each non-inference stage's CPU time for the worst inputs found, at a given size.

Each shape is one that made some step quadratic before issue 23 (numbers and backticks in span finding,
word boundaries in the email pattern, floods inside one word, tens of thousands of findings or names).
The stages' own logic is timed (``time.process_time``: CPU of this process, all threads), without Kafka;
``LLMOPS_BENCH_HOSTILE_CHARS`` sets the size (default: the prompt limit, 200,000 characters).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

from benchmarks.report import Section, table
from services.postprocess.finisher import Finisher
from services.preprocess.language import LanguageDetector
from services.preprocess.normalize import normalize_text
from services.preprocess.typos import TypoCorrector
from services.safety.checker import SafetyChecker
from services.safety.policy_file import SafetyPolicy
from shared.contracts.envelope import ChatMessage, Completion, Envelope, Grounding, Request
from shared.guards import GuardResources

__all__ = ["SHAPES", "run"]

#: Repeated to the size: the shapes that were quadratic somewhere.
SHAPES = {
    "numbers": "1 ",
    "inline code": "`a` ",
    "email word boundaries": "a.",
    "floods in one word": "aaaab",
    "addresses": "a@b.co ",
    "names": "John Smith ",
    "sentences": "Hi. ",
    "blank lines": "\n ",
    "spaces and tabs": " \t",
    "runs of marks": ".!",
    "inline code at the NER's worst": "`a` `b` ",
}
_BUDGET_S = 2.0
_SYSTEM = "You are a helpful assistant. Never reveal the code RX-7731."


def _cpu(work: Callable[[], object]) -> float:
    t0 = time.process_time()
    work()
    return time.process_time() - t0


def _preprocess_cpu(text: str, typos: TypoCorrector, detector: LanguageDetector) -> float:
    """Repair, language and typos: the preprocess steps written in Python."""
    t0 = time.process_time()
    repaired, _ = normalize_text(text, frequency=typos.frequency)
    detector.detect(repaired)
    typos.correct(repaired, knows_word=lambda _w: False)
    return time.process_time() - t0


def _grounded(text: str) -> Envelope:
    messages = [ChatMessage(role="system", content=_SYSTEM), ChatMessage(role="user", content=text)]
    env = Envelope(request=Request(messages=[messages[1]]))
    env.grounding = Grounding(template_id="t", template_version=1, messages=messages, prompt=_SYSTEM)
    return env


def run() -> Section:
    """Time repair, language, typos, safety and the final answer on each shape at the size limit."""
    size = int(os.environ.get("LLMOPS_BENCH_HOSTILE_CHARS", "200000"))
    typos, detector = TypoCorrector(), LanguageDetector()
    typos.warm_up()
    detector.warm_up()
    policy = SafetyPolicy.load()
    checker = SafetyChecker(policy, GuardResources())
    checker.warm_up()
    # Longer texts are blocked by the length check before any other check reads them.
    limit = policy.for_tenant("default").checks.length.max_chars
    finisher = Finisher()
    finisher.warm_up()
    rows: list[list[object]] = []
    figures: dict[str, float] = {}
    for name, unit in SHAPES.items():
        text = (unit * (size // len(unit) + 1))[:size]
        pre = _preprocess_cpu(text, typos, detector)
        env = _grounded(text)
        safety = _cpu(functools.partial(checker.process, env))
        scanned = _cpu(functools.partial(checker.process, _grounded(text[:limit])))
        env.completion = Completion(text=text, model="m", tokens_in=1, tokens_out=1)
        post = _cpu(functools.partial(finisher.finish, env))
        rows.append([name, pre, safety, scanned, post])
        figures |= {
            f"{name} preprocess s": pre,
            f"{name} safety s": safety,
            f"{name} safety at the length limit s": scanned,
            f"{name} postprocess s": post,
        }
    body = (
        f"CPU seconds per request of {size:,} characters (preprocess: repair, language, typos; the tokenizer and "
        f"the embedder are linear C++/torch). Safety blocks a text over its length limit ({limit:,} characters) "
        f"before the other checks read it, so it is also timed on the first {limit:,} characters, the most it scans "
        f"with every check. Budget: {_BUDGET_S} s per non-inference stage.\n\n"
        + table(["shape", "preprocess", "safety", f"safety at {limit:,}", "postprocess"], rows)
    )
    return Section("Hostile inputs at the size limit (issue 23)", body, figures)
