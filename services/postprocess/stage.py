"""The postprocess stage: ``llmops.generated`` → the request's reply topic, the turn to ``llmops.turns``.

Streamed pieces (``kind="chunk"``) go through the ``StreamGate`` and come out as zero or one
checked chunk each; the message with the whole completion becomes the last chunk (what was
held back) followed by the final answer.

A final answer's outputs, in the order the runner publishes them (each acknowledged before the next):
the turn (memory is ahead of the client's next turn), the answer, then its token accounting on
``llmops.usage`` and, when the semantic cache looked it up and it passed every check unchanged, the
answer offered on ``llmops.cache``. Those two come after the answer, so an answer that could not be
sent is never billed (issue 23).
"""

from __future__ import annotations

import asyncio

from services.postprocess.finisher import Finisher
from services.postprocess.output_checks import OutputChecker
from services.postprocess.settings import PostprocessSettings
from services.postprocess.stream import StreamGate
from shared.cache import CacheEntry, cacheable_answer
from shared.contracts.envelope import Envelope
from shared.contracts.stage import Output, Outputs, Stage, StageContext
from shared.contracts.topology import Role
from shared.guards.policy import PolicySet
from shared.models.registry import ModelRegistry
from shared.models.usage import usage_record

__all__ = ["PostprocessStage"]


class PostprocessStage(Stage):
    """Checks and polishes each answer, streamed or whole, and accounts for it.

    Example:
        >>> stage = PostprocessStage(PostprocessSettings())
        >>> await stage.warm_up(service)
        >>> [output.role for output in (await stage.process([final]))[0]]
        [<Role.TURNS: 'turns'>, <Role.REPLY: 'reply'>, <Role.USAGE: 'usage'>]

    """

    name = "postprocess"

    def __init__(self, settings: PostprocessSettings) -> None:
        self.settings = settings
        self.registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
        self._finisher: Finisher | None = None
        self._gate: StreamGate | None = None

    async def warm_up(self, context: StageContext) -> None:  # noqa: ARG002 - publishes nothing of its own
        """Build the output guards, the polisher and the stream gate."""
        checker = OutputChecker(policy=PolicySet.load(self.settings.policy_path))
        finisher = Finisher(checker)
        await asyncio.to_thread(finisher.warm_up)
        self._finisher = finisher
        self._gate = StreamGate(checker, max_streams=self.settings.max_streams)

    async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
        """Each message's outputs (one message at a time: ``delivery`` is ``one``)."""
        results: list[Outputs | Exception] = []
        for env in batch:
            try:
                results.append(self.finish(env))
            except Exception as exc:  # noqa: BLE001 - the runner answers it as this message's error
                results.append(exc)
        return results

    def finish(self, env: Envelope) -> Outputs:
        """A chunk's checked piece, or a final answer's turn, pieces, answer and accounting."""
        if self._finisher is None or self._gate is None:
            msg = "postprocess: warm_up() was not awaited"
            raise RuntimeError(msg)
        if env.kind == "chunk":
            return [Output.of(Role.REPLY, piece) for piece in self._gate.on_chunk(env)]
        pieces, refusal = self._gate.finish(env)
        finished = self._finisher.finish(env, stream_refusal=refusal)
        outputs: Outputs = []
        if finished.turn is not None and self.settings.publish_turns:
            # Before the answer (memory must be ahead of the client's next turn); taken back if the answer fails.
            turn = finished.turn
            outputs.append(
                Output.record(
                    Role.TURNS, turn, key=env.conversation_id, request_id=env.request_id, undo=turn.retraction()
                )
            )
        outputs += [Output.of(Role.REPLY, piece) for piece in (*pieces, finished.envelope)]
        return outputs + self.accounting(finished.envelope)

    def accounting(self, final: Envelope) -> Outputs:
        """What an answered request costs (``llmops.usage``) and the answer offered to the cache (``llmops.cache``).

        Published after the answer (issue 23). A crash between them redelivers the message: the client gets
        its answer once, and the bill is deduplicated by request id.
        """
        if final.kind != "final" or final.error is not None:
            return []
        outputs: Outputs = []
        if self.settings.publish_usage:
            record = usage_record(final, self.registry)
            outputs.append(Output.record(Role.USAGE, record, key=final.tenant, request_id=final.request_id))
        if final.cache is not None and cacheable_answer(final):
            entry = CacheEntry.from_answer(final)
            outputs.append(Output.record(Role.CACHE, entry, key=entry.key, request_id=final.request_id))
        return outputs
