"""Which requests may be looked up, which answers may be cached, and the exact part of the key.

A semantic match alone is not enough: the same question asked of another model, under another
template or safety policy, or grounded on other documents or another conversation's memory,
deserves its own answer. All of that goes into an exact key (a hash); only entries with the
same key are compared by embedding.
"""

from __future__ import annotations

import hashlib
import json

from shared.contracts.envelope import Envelope
from shared.contracts.shadow import SHADOW_METADATA_KEY, is_shadow

__all__ = [
    "CACHE_METADATA_KEY",
    "SHADOW_METADATA_KEY",
    "cache_key",
    "cacheable_answer",
    "context_hash",
    "is_shadow",
    "lookup_allowed",
]

#: ``request.metadata["cache"] = "off"`` keeps one request out of the cache both ways.
CACHE_METADATA_KEY = "cache"
_OFF = {"off", "false", "no", "0"}
_FINISHED = {None, "stop"}


def _opted_out(env: Envelope) -> bool:
    metadata = env.request.metadata if env.request else {}
    return metadata.get(CACHE_METADATA_KEY, "").strip().lower() in _OFF or is_shadow(env)


def context_hash(env: Envelope) -> str:
    """A hash of everything grounding put around the user's text: documents, memory, system prompt."""
    grounding = env.grounding
    if grounding is None:
        return ""
    context = {
        "documents": [[d.id, d.text] for d in grounding.documents],
        # The last message is the user's own text, which the embedding compares; the rest is context.
        "messages": [[m.role, m.content] for m in grounding.messages[:-1]],
    }
    return hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()


def cache_key(env: Envelope, *, model_revision: str) -> str:
    """The exact part of the cache key: tenant, model and its weights, template, policy, output shape, context.

    Example:
        >>> cache_key(checked_envelope, model_revision=registry.get("gemma-3-270m").revision)
        '5f0c...'

    """
    request = env.require_request()
    parts = {
        "tenant": env.tenant,
        "model": env.prepared.model if env.prepared else request.model,
        "revision": model_revision,
        "template": [env.grounding.template_id, env.grounding.template_version] if env.grounding else None,
        "policy": env.safety.policy_version if env.safety else None,
        "json_schema": request.params.json_schema,
        "stop": sorted(request.params.stop),
        "context": context_hash(env),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def lookup_allowed(env: Envelope) -> bool:
    """Whether a checked request may be answered from the cache: allowed as is, embedded, grounded."""
    return (
        env.kind == "request"
        and env.error is None
        and env.safety is not None
        and env.safety.verdict == "allow"
        and env.prepared is not None
        and env.prepared.embedding is not None
        and env.grounding is not None
        and not _opted_out(env)
    )


def cacheable_answer(env: Envelope) -> bool:
    """Whether a final answer may be given again: generated, complete, and passed every check unchanged.

    Never refused, redacted (on the way in or out), truncated, timed out, cut short while streaming,
    itself from the cache, or a shadow request's.
    """
    response = env.response
    completion = env.completion
    return (
        env.kind == "final"
        and env.error is None
        and env.cache is not None
        and env.cache.hit is None
        and response is not None
        and not response.refused
        and not response.truncated
        and not response.cached
        and response.text.strip() != ""
        and all(f.action == "warn" for f in response.findings)
        and completion is not None
        and completion.finish_reason in _FINISHED
        and env.safety is not None
        and env.safety.verdict == "allow"
        and env.prepared is not None
        and env.prepared.embedding is not None
        and not _opted_out(env)
    )
