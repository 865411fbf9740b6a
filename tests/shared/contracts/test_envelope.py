from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.contracts.envelope import ChatMessage, Envelope, Prepared, Request
from tests.conftest import make_envelope


class TestEnvelope:
    def test_conversation_defaults_to_the_request(self) -> None:
        """A request without a conversation is its own conversation."""
        env = make_envelope()
        assert env.conversation_id == env.request_id
        assert env.schema_version == 1

    def test_round_trip_bytes(self) -> None:
        """Serialization keeps every field."""
        env = make_envelope(tenant="acme", deadline=datetime(2030, 1, 1, tzinfo=UTC))
        assert Envelope.from_bytes(env.to_bytes()) == env

    def test_unknown_schema_version_is_rejected(self) -> None:
        """A message from an incompatible producer does not validate."""
        data = make_envelope().model_dump(mode="json") | {"schema_version": 2}
        with pytest.raises(ValidationError):
            Envelope.model_validate(data)

    def test_unknown_fields_are_rejected(self) -> None:
        """Typos in field names are errors, not silently dropped."""
        data = make_envelope().model_dump(mode="json") | {"surprise": 1}
        with pytest.raises(ValidationError):
            Envelope.model_validate(data)

    def test_empty_messages_are_rejected(self) -> None:
        """A request needs at least one message."""
        with pytest.raises(ValidationError):
            Request(messages=[])

    def test_drop_embedding(self) -> None:
        """The embedding can be left out of the bytes."""
        env = make_envelope()
        env.prepared = Prepared(
            messages=[ChatMessage(role="user", content="x")],
            text="x",
            model="m",
            token_count=1,
            token_budget=9,
            embedding="AAAAAA==",
        )
        assert Envelope.from_bytes(env.to_bytes(drop_embedding=True)).prepared.embedding is None  # type: ignore[union-attr]
        assert env.prepared.embedding is not None

    def test_last_user_text(self) -> None:
        """The last user message is the question."""
        env = Envelope(
            request=Request(
                messages=[
                    ChatMessage(role="user", content="first"),
                    ChatMessage(role="assistant", content="reply"),
                    ChatMessage(role="user", content="second"),
                ]
            )
        )
        assert env.last_user_text == "second"
