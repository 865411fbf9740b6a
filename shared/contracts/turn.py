"""A finished turn: the record on the turns topic that feeds conversation memory (grounding).

Postprocess publishes one per answered request, before the answer (memory must be ahead of the
client's next turn), and its retraction when that answer then cannot be sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from shared.contracts.envelope import SCHEMA_VERSION

__all__ = ["Turn"]


def _now() -> datetime:
    return datetime.now(UTC)


class Turn(BaseModel):
    """A finished turn, published on the turns topic to feed memory."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    request_id: str
    conversation_id: str
    tenant: str
    user: str
    assistant: str
    at: datetime = Field(default_factory=_now)
    retracted: bool = Field(
        default=False,
        description=(
            "Takes back the turn of this request id: its answer could not be sent, so the client never saw it "
            "(written only when true)."
        ),
    )

    @model_serializer(mode="wrap")
    def _only_retractions_say_so(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A turn as it always was on the wire; ``retracted`` only on a retraction (older readers forbid extras)."""
        data: dict[str, Any] = handler(self)
        if not self.retracted:
            data.pop("retracted", None)
        return data

    def retraction(self) -> Turn:
        """The record that takes this turn back out of memory."""
        return self.model_copy(update={"retracted": True})
