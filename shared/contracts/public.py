"""The answer as a client may see it: the public view of a final (or streamed) envelope (issue 23).

The full envelope travels the internal topics; what goes to a reply topic leaves out what is the
operator's or nobody's business: the system prompt and the assembled prompt, the documents safety
dropped as poisoned, grounding's warnings (they can hold a store's error text), the redacted prompt
and the redaction map, the semantic cache's key and hit, the embedding and the request record's
coordinates. An operator who needs whole answers (debugging) sets ``LLMOPS_FULL_ANSWERS``.

It is still an ``Envelope``: every client (the SDK, the gateway, raw Kafka clients) reads it as before.
"""

from __future__ import annotations

from shared.contracts.envelope import Envelope

__all__ = ["public_view"]


def public_view(env: Envelope) -> Envelope:
    """``env`` without its internal parts.

    Example:
        >>> public_view(final_answer).grounding.messages
        []

    """
    update: dict[str, object] = {"cache": None}
    if env.prepared is not None:
        update["prepared"] = env.prepared.model_copy(update={"embedding": None, "source": None})
    dropped = set(env.safety.dropped_documents) if env.safety is not None else set()
    if env.grounding is not None:
        update["grounding"] = env.grounding.model_copy(
            update={
                "messages": [],
                "prompt": "",
                "warnings": [],
                "documents": [d for d in env.grounding.documents if d.id not in dropped],
            }
        )
    if env.safety is not None:
        update["safety"] = env.safety.model_copy(update={"messages": None, "prompt": None, "placeholders": {}})
    return env.model_copy(update=update)
