"""`llmops usage`: records on the real broker summed per tenant and model, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from shared.cli.usage import format_table, run
from shared.contracts.shadow import Traffic
from shared.models.usage import UsageRecord, summarize
from shared.runtime.settings import CoreSettings
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings

NOW = datetime.now(UTC)


def record(
    request_id: str,
    tenant: str,
    prompt: int,
    completion: int,
    *,
    age_h: float = 0,
    cost: float = 0.0,
    traffic: Traffic = "live",
) -> UsageRecord:
    at = NOW - timedelta(hours=age_h)
    return UsageRecord(
        request_id=request_id,
        tenant=tenant,
        model="gemma-3-270m",
        requested_at=at,
        at=at,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
        traffic=traffic,
    )


RECORDS = [
    record("a", "acme", 10, 5, cost=0.001),
    record("b", "acme", 20, 4, cost=0.002),
    record("b", "acme", 20, 4, cost=0.002),  # redelivered
    record("c", "acme", 100, 100, age_h=48),
    record("d", "beta", 7, 1),
    record("s", "acme", 1000, 1000, cost=1.0, traffic="shadow"),  # a replayed request: not the tenant's
]


@pytest.fixture
async def core(kafka: str) -> CoreSettings:
    core = core_settings(kafka, prefix=f"use{uuid.uuid4().hex[:6]}.")
    await ensure_topics(core.kafka, core.topics.all())
    producer = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap)
    await producer.start()
    for r in RECORDS:
        await producer.send_and_wait(core.topics.usage, r.model_dump_json().encode(), key=r.tenant.encode())
    await producer.stop()
    return core


def args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**({"tenant": None, "since": None, "json": False, "include_shadow": False} | given))


class TestUsageCommand:
    async def test_json_sums_per_tenant_since(self, core: CoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """--json --tenant --since: one object whose sums are those of the tenant's recent live records, each once."""
        assert await run(core, args(tenant="acme", since="24h", json=True)) == 0
        [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert (row["tenant"], row["requests"], row["prompt_tokens"], row["completion_tokens"]) == ("acme", 2, 30, 9)
        assert row["total_tokens"] == 39
        assert row["cost"] == pytest.approx(0.003)

    async def test_table_of_every_tenant(self, core: CoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """Without filters: a row per tenant and model and a total row, shadow traffic left out."""
        assert await run(core, args()) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split()[:3] == ["tenant", "model", "requests"]
        assert [line.split()[0] for line in lines[1:]] == ["acme", "beta", "all"]
        assert lines[-1].split()[1:6] == ["4", "0", "137", "110", "247"]

        assert "traffic" not in lines[0]

    async def test_include_shadow_shows_it_apart(self, core: CoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """--include-shadow: the shadow records in a row of their own, the live sums unchanged."""
        assert await run(core, args(tenant="acme", since="24h", json=True, include_shadow=True)) == 0
        rows = {row["traffic"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
        assert (rows["live"]["requests"], rows["live"]["total_tokens"]) == (2, 39)
        assert (rows["shadow"]["requests"], rows["shadow"]["total_tokens"]) == (1, 2000)


class TestFormatTable:
    def test_nothing_recorded(self) -> None:
        """An empty topic says so."""
        assert format_table([]) == "no usage recorded"

    def test_one_group_has_no_total_row(self) -> None:
        """A single row is its own total."""
        table = format_table(summarize(RECORDS, tenant="beta"))
        assert len(table.splitlines()) == 2

    def test_shadow_rows_have_a_traffic_column_and_their_own_total(self) -> None:
        """Live and shadow rows are labelled, and each traffic has its total: shadow never adds to the live one."""
        lines = format_table(summarize(RECORDS, since=NOW - timedelta(hours=1), include_shadow=True)).splitlines()
        assert lines[0].split()[:4] == ["tenant", "model", "traffic", "requests"]
        cells = [line.split() for line in lines[1:]]
        assert [c[0] for c in cells] == ["acme", "acme", "beta", "all", "all"]
        assert [c[2] if c[0] != "all" else c[1] for c in cells] == ["live", "shadow", "live", "live", "shadow"]
        assert cells[3][2:7] == ["3", "0", "37", "10", "47"]  # live: a, b, d
        assert cells[4][2:7] == ["1", "0", "1000", "1000", "2000"]
