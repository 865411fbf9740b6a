"""Generate the AsyncAPI document of every topic and message from the five FastStream apps.

``make docs`` writes ``docs/asyncapi.yaml``; a test fails when the committed file is stale.
Each stage's subscribers come from its app as built by ``create_service``; its outputs are the
topology's (``shared.contracts.topology``), added as documented publishers (the runner publishes
through ``broker.publish``).
The raw-bytes handler signature would document the payload as bytes, so every message
payload is replaced by the envelope's JSON schema: that is what travels on every topic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from faststream.specification import AsyncAPI

from services.grounding.app import create_service as grounding
from services.inference.app import create_service as inference
from services.postprocess.app import create_service as postprocess
from services.preprocess.app import create_service as preprocess
from services.safety.app import create_service as safety
from shared.cache import CacheEntry
from shared.contracts.envelope import Envelope
from shared.contracts.topology import Role, spec_for, topic_of
from shared.contracts.turn import Turn
from shared.models.usage import UsageRecord
from shared.runtime.service import StageService
from shared.runtime.settings import TopicSettings

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "asyncapi.yaml"

FACTORIES: dict[str, Callable[[], StageService]] = {
    "preprocess": preprocess,
    "grounding": grounding,
    "safety": safety,
    "inference": inference,
    "postprocess": postprocess,
}


def build() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as plain data."""
    topics = TopicSettings()
    # Topics that carry something other than the envelope.
    own_schemas: dict[str, type[Any]] = {topics.turns: Turn, topics.usage: UsageRecord, topics.cache: CacheEntry}
    brokers = []
    for stage, factory in FACTORIES.items():
        service = factory()
        spec = spec_for(stage)
        roles = [*spec.outputs, *(role for side in spec.side_inputs for role in side.outputs), Role.DLQ]
        for topic in [topic_of(role, topics) for role in roles]:
            schema = own_schemas.get(topic, Envelope)
            service.broker.publisher(topic, schema=schema, title=f"{stage}:{topic}", description=f"{stage} writes")
        brokers.append(service.broker)
    spec: dict[str, Any] = (
        AsyncAPI(*brokers, title="llmops", version="1", description="The topics of the llmops pipeline (DESIGN.md §1).")
        .to_specification()
        .to_jsonable()
    )
    envelope_schema = Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(envelope_schema.pop("$defs", {}))
    schemas["Envelope"] = envelope_schema
    for name, message in spec["components"].get("messages", {}).items():
        payload = json.dumps(message.get("payload", {}))
        if "ingest" not in name and not any(schema.__name__ in payload for schema in own_schemas.values()):
            message["payload"] = {"$ref": "#/components/schemas/Envelope"}
    return spec


def render() -> str:
    """The document as YAML text."""
    return yaml.safe_dump(build(), sort_keys=True, width=120)


def main(argv: list[str] | None = None) -> int:
    """Write the document (or with ``--check``, fail when the committed one is stale)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
