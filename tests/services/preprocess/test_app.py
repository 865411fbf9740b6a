import json

from faststream.kafka import TestKafkaBroker

from services.preprocess.app import create_service
from services.preprocess.settings import PreprocessSettings
from shared.messaging.envelope import Envelope
from tests.conftest import capture, make_envelope


class TestPreprocessService:
    async def test_request_to_preprocessed(self, models_dir: object) -> None:
        """A request comes out on the preprocessed topic with the prepared section and a trail record."""
        service = create_service(PreprocessSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.preprocessed, topics.responses, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            env = make_envelope("  What   is the capital of France?\u200b ", conversation_id="c1")
            await broker.publish(env.to_bytes(), topics.requests, key=b"c1")
        [raw] = out[topics.preprocessed]
        result = Envelope.from_bytes(raw)
        assert result.prepared is not None
        assert result.prepared.text == "What is the capital of France?"
        assert result.prepared.changes == ["invisible_chars", "whitespace"]
        assert result.prepared.model == "qwen2.5-coder-0.5b-instruct"
        assert result.trail[-1].stage == "preprocess"
        assert out[topics.dlq] == []

    async def test_minimal_json_and_garbage(self, models_dir: object) -> None:
        """The minimal shape is accepted; garbage is dead-lettered without stopping the next message."""
        service = create_service(PreprocessSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.preprocessed, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(b"{not json", topics.requests)
            minimal = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
            await broker.publish(json.dumps(minimal).encode(), topics.requests, key=b"conv-9")
        assert out[topics.dlq] == [b"{not json"]
        [raw] = out[topics.preprocessed]
        result = Envelope.from_bytes(raw)
        assert result.conversation_id == "conv-9"
        assert result.require_request().params.max_tokens == 8
