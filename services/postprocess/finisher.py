"""The postprocess stage's work: the final answer (or the refusal), and the turn for memory.

Order matters: polish first (so the checks see what the user will see), citations next,
then the user's own values are put back where safety pseudonymized them (so that the
output checks can tell them from PII the model made up), then the output checks.

An answer that is nothing but citation marks (``[1]``) is a failed answer, never delivered:
the client gets an ``empty_answer`` error (retriable; the trail records it) instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.postprocess.citations import attribute_sources, is_marker_only, map_citations
from services.postprocess.output_checks import CheckResult, OutputChecker, OutputContext
from services.postprocess.polish import polish_answer
from shared.cache.keys import is_shadow
from shared.contracts.envelope import CacheHit, Envelope, Response, Safety, Usage
from shared.contracts.errors import PipelineError
from shared.contracts.turn import Turn

__all__ = ["EmptyAnswerError", "Finished", "Finisher", "Restored", "restore_placeholders"]


class EmptyAnswerError(PipelineError):
    """The model's answer was only citation marks: answered as a retriable error, not dead-lettered.

    The message was fine; the model failed on it, so a copy in the DLQ would help no one.
    """

    dead_letter = False

    def __init__(self, text: str) -> None:
        super().__init__(
            "empty_answer",
            f"the model answered only with a citation marker ({text.strip()[:40]!r}), not an answer; ask again",
            retriable=True,
        )


def _require_an_answer(text: str, stream_refusal: CheckResult | None) -> None:
    """Raise ``EmptyAnswerError`` when ``text`` is citation marks and nothing else (a refused stream is refused)."""
    if stream_refusal is None and is_marker_only(text):
        raise EmptyAnswerError(text)


@dataclass(frozen=True)
class Restored:
    """Text with placeholders replaced by the user's values, and where those values now are."""

    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)


def restore_placeholders(text: str, safety: Safety | None) -> Restored:
    """Put the user's own values back (``<EMAIL_1>`` → the address) when the safety policy allows it.

    Example:
        >>> safety = Safety(verdict="redact", placeholders={"<EMAIL_1>": "a@b.org"}, restore_placeholders=True)
        >>> restore_placeholders("Mail <EMAIL_1>.", safety)
        Restored(text='Mail a@b.org.', spans=[(5, 12)])

    """
    if safety is None or not safety.restore_placeholders or not safety.placeholders:
        return Restored(text)
    keys = sorted(safety.placeholders, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(k) for k in keys))
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = length = 0
    for m in pattern.finditer(text):
        before = text[pos : m.start()]
        value = safety.placeholders[m.group()]
        out += [before, value]
        length += len(before)
        spans.append((length, length + len(value)))
        length += len(value)
        pos = m.end()
    out.append(text[pos:])
    return Restored("".join(out), spans)


@dataclass(frozen=True)
class Finished:
    """The final answer envelope and the turn to remember (None for refusals and errors)."""

    envelope: Envelope
    turn: Turn | None


def _without_secrets(safety: Safety | None) -> Safety | None:
    """The safety section as the client may see it: the redaction map (the user's values) left out."""
    if safety is None or not safety.placeholders:
        return safety
    return safety.model_copy(update={"placeholders": {}})


class Finisher:
    """Turns a generated (or blocked) envelope into the final answer.

    Example:
        >>> finisher = Finisher()
        >>> finisher.warm_up()
        >>> finisher.finish(envelope).envelope.response.text
        'The capital of France is Paris.'

    """

    def __init__(self, checker: OutputChecker | None = None) -> None:
        self.checker = checker or OutputChecker()

    def warm_up(self) -> None:
        """Build the output guards."""
        self.checker.warm_up()

    def process(self, env: Envelope) -> Envelope:
        """Fill ``response`` and mark the envelope final."""
        return self.finish(env).envelope

    def finish(self, env: Envelope, *, stream_refusal: CheckResult | None = None) -> Finished:
        """The final answer; ``stream_refusal`` is the blocking result of a stream cut short.

        Raises ``EmptyAnswerError`` when the answer is only citation marks.
        """
        safety = env.safety
        if safety is not None and safety.verdict == "block":
            response = Response(text=safety.refusal or "I can't help with this request.", refused=True)
            return Finished(self._final(env, response), None)
        completion = env.completion
        hit = env.cache.hit if env.cache is not None else None
        if completion is None and hit is not None:
            return self._from_cache(env, hit)
        if completion is None:
            raise PipelineError("invalid_message", "postprocess needs a completion, a cache hit or a blocked verdict")
        usage = Usage(
            prompt_tokens=completion.tokens_in,
            completion_tokens=completion.tokens_out,
            total_tokens=completion.tokens_in + completion.tokens_out,
        )
        polished = polish_answer(completion.text, finish_reason=completion.finish_reason)
        _require_an_answer(polished.text, stream_refusal)
        changes = polished.changes
        documents = env.grounding.documents if env.grounding else []
        cited = map_citations(polished.text, documents)
        if cited.removed:
            changes.append("citations_removed")
        citations = cited.citations or attribute_sources(cited.text, documents)
        restored = restore_placeholders(cited.text, safety)
        if restored.spans:
            changes.append("placeholders_restored")
        checked = stream_refusal or self.checker.check(
            restored.text, OutputContext.from_envelope(env), allowed=restored.spans
        )
        if checked.blocked_by is not None:
            response = Response(text=checked.text, refused=True, findings=checked.findings, usage=usage)
            return Finished(self._final(env, response), None)
        if any(f.action == "redact" for f in checked.findings):
            changes.append("output_redacted")
        response = Response(
            text=checked.text,
            changes=changes,
            citations=citations,
            truncated=polished.truncated,
            findings=checked.findings,
            usage=usage,
        )
        final = self._final(env, response)
        # Memory keeps the answer as the model saw the conversation: placeholders, not the user's values.
        memory_text = checked.text
        if restored.spans and safety is not None:
            for placeholder, value in safety.placeholders.items():
                memory_text = memory_text.replace(value, placeholder)
        return Finished(final, self._turn(env, memory_text))

    def _from_cache(self, env: Envelope, hit: CacheHit) -> Finished:
        """The cached answer, polished and checked when it was first given; checked again against this prompt."""
        checked = self.checker.check(hit.text, OutputContext.from_envelope(env))
        usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        if checked.blocked_by is not None:
            response = Response(text=checked.text, refused=True, findings=checked.findings, usage=usage)
            return Finished(self._final(env, response), None)
        response = Response(
            text=checked.text,
            changes=["output_redacted"] if any(f.action == "redact" for f in checked.findings) else [],
            citations=hit.citations,
            findings=checked.findings,
            usage=usage,
            cached=True,
            cached_from=hit.request_id,
        )
        return Finished(self._final(env, response), self._turn(env, checked.text))

    @staticmethod
    def _final(env: Envelope, response: Response) -> Envelope:
        update: dict[str, object] = {
            "response": response,
            "kind": "final",
            "safety": _without_secrets(env.safety),
            "trail": [*env.trail],
        }
        if env.completion is not None and any(f.action != "warn" for f in response.findings):
            # The one exception to "each stage fills only its own section": the raw text holds what the
            # checks redacted or blocked, so the answer carries the checked text in its place.
            update["completion"] = env.completion.model_copy(update={"text": response.text})
        return env.model_copy(update=update)

    @staticmethod
    def _turn(env: Envelope, answer: str) -> Turn | None:
        """The turn to remember; the user text as the model saw it; none for a shadow request."""
        if env.prepared is None or is_shadow(env):
            return None
        user = env.prepared.text
        if env.safety is not None and env.safety.messages:
            user = next((m.content for m in reversed(env.safety.messages) if m.role == "user"), user)
        return Turn(
            request_id=env.request_id,
            conversation_id=env.conversation_id,
            tenant=env.tenant,
            user=user,
            assistant=answer,
        )
