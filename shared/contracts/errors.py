"""Typed pipeline errors: each carries a stable code, the stage and whether a retry can help."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.contracts.envelope import Envelope

__all__ = ["PipelineError", "PoisonMessageError", "RefusedRequestError"]


class PipelineError(Exception):
    """A failure that becomes the client's answer (``ErrorInfo``) and a DLQ record.

    Example:
        >>> raise PipelineError("prompt_too_long", "the prompt has 9000 tokens; the budget is 3840")

    """

    #: Whether the failed message is kept in the DLQ; refusals by policy (a quota) are answered only.
    dead_letter: bool = True
    #: Whether the answer goes to the default responses topic instead of the request's ``reply_to``
    #: (a refused reply topic must not receive the refusal either); for a shadow request, the shadow topic.
    answer_on_default_topic: bool = False

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retriable: bool = False,
        retry_after_s: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retriable = retriable
        self.retry_after_s = retry_after_s
        #: What operators see (the DLQ record, the log) and the client never does, e.g. an exception's text.
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PoisonMessageError(PipelineError):
    """The message cannot be read as an envelope at all."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_message", message)


class RefusedRequestError(PipelineError):
    """A message that parsed into ``envelope`` but is refused while it is read (a forged tenant).

    Unlike a poison message it is answered like any failed request, from its envelope (so
    ``answer_on_default_topic`` and the request's own routing apply), and dead-lettered.
    """

    def __init__(self, code: str, message: str, *, envelope: Envelope) -> None:
        super().__init__(code, message)
        self.envelope = envelope
