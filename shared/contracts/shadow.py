"""Shadow traffic: requests mirrored for evaluation (``llmops eval``, ``llmops replay``), never for users.

A shadow request is marked in its metadata (``shadow``, any value but an "off" word). Every stage
serves it like any other, but its answer goes to the shadow reply topic (never a user's), it is
never cached, it writes no conversation memory, and its logs and metrics say ``shadow``.

Example:
    >>> env = Envelope(request=Request(messages=[ChatMessage(role="user", content="Hi")], metadata={"shadow": "1"}))
    >>> is_shadow(env), traffic(env)
    (True, 'shadow')

"""

from __future__ import annotations

from typing import Literal

from shared.contracts.envelope import Envelope

__all__ = [
    "POLICY_METADATA_KEY",
    "REPLAY_OF_METADATA_KEY",
    "SHADOW_METADATA_KEY",
    "SHADOW_ONLY_KEYS",
    "Traffic",
    "is_shadow",
    "traffic",
]

#: ``request.metadata["shadow"]`` marks a shadow request (its value says who sent it, e.g. ``replay``).
SHADOW_METADATA_KEY = "shadow"
#: ``request.metadata["replay_of"]``: the recorded request a replayed one repeats.
REPLAY_OF_METADATA_KEY = "replay_of"
#: ``request.metadata["policy"]``: the named safety policy a shadow request is checked under (ignored for others).
POLICY_METADATA_KEY = "policy"
#: What only the operator's tools set; the gateway drops them from its callers' metadata.
SHADOW_ONLY_KEYS = frozenset({SHADOW_METADATA_KEY, REPLAY_OF_METADATA_KEY, POLICY_METADATA_KEY})

Traffic = Literal["live", "shadow"]
_OFF = {"off", "false", "no", "0"}


def is_shadow(env: Envelope) -> bool:
    """Whether the request is a shadow one (replayed, evaluation): never cached, never remembered."""
    metadata = env.request.metadata if env.request else {}
    shadow = metadata.get(SHADOW_METADATA_KEY, "").strip().lower()
    return shadow != "" and shadow not in _OFF


def traffic(env: Envelope) -> Traffic:
    """The metrics label of a message: ``shadow`` or ``live`` (two values, so cardinality stays bounded)."""
    return "shadow" if is_shadow(env) else "live"
