"""The grounding stage's work: add conversation memory and assemble the prompt from a template."""

from __future__ import annotations

from services.grounding.memory import ConversationMemory
from services.grounding.templates import TemplateStore, UnknownTemplateError
from shared.components.chat_render import render_plain
from shared.messaging.envelope import ChatMessage, Envelope, Grounding
from shared.messaging.errors import PipelineError

__all__ = ["Grounder"]


class Grounder:
    """Builds the final prompt: template system text, earlier turns, then the request's messages.

    When the client sends its own history (any assistant message), server memory is not
    added, so turns are never doubled.

    Example:
        >>> grounder = Grounder(ConversationMemory(), TemplateStore.load())
        >>> grounder.process(envelope).grounding.messages[0].role
        'system'

    """

    def __init__(
        self, memory: ConversationMemory, templates: TemplateStore, *, default_template: str = "default"
    ) -> None:
        self.memory = memory
        self.templates = templates
        self.default_template = default_template

    def process(self, env: Envelope) -> Envelope:
        """Fill ``grounding``; raises ``PipelineError`` for an unknown template."""
        if env.prepared is None:
            raise PipelineError("invalid_message", "grounding needs the prepared section")
        ref = env.require_request().metadata.get("template", self.default_template)
        try:
            template = self.templates.get(ref)
        except UnknownTemplateError as exc:
            raise PipelineError("unknown_template", str(exc)) from exc

        client_system = [m.content for m in env.prepared.messages if m.role == "system"]
        dialogue = [m for m in env.prepared.messages if m.role != "system"]
        system = "\n\n".join([template.system, *client_system])

        has_own_history = any(m.role == "assistant" for m in dialogue)
        memory = (
            []
            if has_own_history
            else self.memory.recent(env.tenant, env.conversation_id, exclude_request=env.request_id)
        )
        messages = [ChatMessage(role="system", content=system)]
        for turn in memory:
            messages.append(ChatMessage(role="user", content=turn.user))
            messages.append(ChatMessage(role="assistant", content=turn.assistant))
        messages.extend(dialogue)

        grounding = Grounding(
            memory=memory,
            template_id=template.id,
            template_version=template.version,
            messages=messages,
            prompt=render_plain(messages),
        )
        return env.model_copy(update={"grounding": grounding})
