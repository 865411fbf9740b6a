"""Envelopes at the point the semantic cache sees them: checked (lookup) and finished (store)."""

from __future__ import annotations

import numpy as np

from shared.contracts.envelope import (
    CacheInfo,
    ChatMessage,
    Completion,
    Document,
    Envelope,
    Grounding,
    Prepared,
    Request,
    Response,
    Safety,
)
from shared.text.embedder import EMBEDDING_DIM, encode_vector


def unit(seed: int, *, near: np.ndarray | None = None, noise: float = 0.0) -> np.ndarray:
    """A unit vector: random for ``seed``, or ``near`` plus a little noise."""
    rng = np.random.default_rng(seed)
    vector = rng.normal(size=EMBEDDING_DIM).astype(np.float32)
    if near is not None:
        vector = near + noise * vector / np.linalg.norm(vector)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def checked(
    text: str = "What is the capital of France?",
    *,
    tenant: str = "acme",
    vector: np.ndarray | None = None,
    model: str = "gemma-3-270m",
    documents: list[Document] | None = None,
    template_version: int = 1,
    policy_version: int = 1,
    verdict: str = "allow",
    metadata: dict[str, str] | None = None,
    max_tokens: int = 64,
) -> Envelope:
    """A request as safety passes it on."""
    messages = [ChatMessage(role="user", content=text)]
    env = Envelope(tenant=tenant, request=Request(messages=messages, metadata=metadata or {}))
    env.request.params.max_tokens = max_tokens  # type: ignore[union-attr]
    env.prepared = Prepared(
        messages=messages,
        text=text,
        model=model,
        token_count=9,
        token_budget=2000,
        embedding=encode_vector(unit(1) if vector is None else vector),
    )
    env.grounding = Grounding(
        documents=documents or [],
        template_id="default",
        template_version=template_version,
        messages=[ChatMessage(role="system", content="Be brief."), *messages],
        prompt=text,
    )
    env.safety = Safety(verdict=verdict, policy_version=policy_version)  # type: ignore[arg-type]
    return env


def finished(env: Envelope, *, key: str = "k", answer: str = "Paris.", finish_reason: str = "stop") -> Envelope:
    """``env`` answered by the model and finished by postprocess (a cache miss)."""
    return env.model_copy(
        update={
            "kind": "final",
            "cache": CacheInfo(key=key),
            "completion": Completion(
                text=answer, model="gemma-3-270m", tokens_in=9, tokens_out=3, finish_reason=finish_reason
            ),
            "response": Response(text=answer),
        }
    )
