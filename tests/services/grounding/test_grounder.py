import pytest

from services.grounding.grounder import Grounder
from services.grounding.memory import ConversationMemory
from services.grounding.templates import TemplateStore
from shared.messaging.envelope import ChatMessage, Envelope, Prepared, Request, Turn
from shared.messaging.errors import PipelineError


def prepared(messages: list[ChatMessage], conversation: str = "c1", metadata: dict[str, str] | None = None) -> Envelope:
    env = Envelope(conversation_id=conversation, request=Request(messages=messages, metadata=metadata or {}))
    env.prepared = Prepared(messages=messages, text=messages[-1].content, model="m", token_count=1, token_budget=99)
    return env


class TestGrounder:
    def test_template_then_memory_then_question(self) -> None:
        """The prompt is the system text, earlier turns of the conversation, then the new question."""
        memory = ConversationMemory()
        memory.add(
            Turn(request_id="r0", conversation_id="c1", tenant="default", user="Capital of France?", assistant="Paris.")
        )
        grounder = Grounder(memory, TemplateStore.load())
        out = grounder.process(prepared([ChatMessage(role="user", content="Its population?")]))
        assert out.grounding is not None
        roles = [(m.role, m.content) for m in out.grounding.messages[1:]]
        assert roles == [("user", "Capital of France?"), ("assistant", "Paris."), ("user", "Its population?")]
        assert out.grounding.messages[0].role == "system"
        assert out.grounding.template_id == "default"
        assert [t.request_id for t in out.grounding.memory] == ["r0"]
        assert out.grounding.prompt.endswith("User: Its population?\nAssistant:")

    def test_client_history_replaces_memory(self) -> None:
        """When the client sends its own history, server memory is not added again."""
        memory = ConversationMemory()
        memory.add(Turn(request_id="r0", conversation_id="c1", tenant="default", user="x", assistant="y"))
        history = [
            ChatMessage(role="user", content="x"),
            ChatMessage(role="assistant", content="y"),
            ChatMessage(role="user", content="z"),
        ]
        out = Grounder(memory, TemplateStore.load()).process(prepared(history))
        assert out.grounding is not None
        assert out.grounding.memory == []
        assert len(out.grounding.messages) == 4

    def test_client_system_message_is_kept(self) -> None:
        """A client's system message is added to the template's."""
        msgs = [ChatMessage(role="system", content="Answer in French."), ChatMessage(role="user", content="Hi")]
        out = Grounder(ConversationMemory(), TemplateStore.load()).process(prepared(msgs))
        assert out.grounding is not None
        assert out.grounding.messages[0].content.endswith("Answer in French.")

    def test_unknown_template(self) -> None:
        """A request naming a template that does not exist gets a clear error."""
        env = prepared([ChatMessage(role="user", content="Hi")], metadata={"template": "missing"})
        with pytest.raises(PipelineError) as err:
            Grounder(ConversationMemory(), TemplateStore.load()).process(env)
        assert err.value.code == "unknown_template"
