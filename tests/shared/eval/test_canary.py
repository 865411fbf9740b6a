"""The canary report: an alias's variants compared from usage records, against the registry's weights."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.eval.canary import build_canary_report, render_canary_markdown, write_canary_report
from shared.models.aliases import AliasVariant, ModelAlias
from shared.models.registry import ModelRegistry
from shared.models.usage import UsageRecord

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
STABLE, CANARY = "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    """The packaged registry with ``chat``: 90/10 for everyone, 50/50 for tenant ``half``."""
    alias = ModelAlias(
        name="chat",
        variants=[AliasVariant(model=STABLE, weight=90), AliasVariant(model=CANARY, weight=10)],
        overrides={"half": [AliasVariant(model=STABLE, weight=1), AliasVariant(model=CANARY, weight=1)]},
    )
    return ModelRegistry.load().model_copy(update={"aliases": {"chat": alias}})


def answer(
    i: int, model: str, *, ms: float, tenant: str = "acme", alias: str | None = "chat", **fields: object
) -> UsageRecord:
    return UsageRecord(
        request_id=f"r{i}",
        tenant=tenant,
        model=model,
        alias=alias,
        requested_at=NOW,
        at=NOW + timedelta(milliseconds=ms),
        **fields,  # type: ignore[arg-type]
    )


def traffic() -> list[UsageRecord]:
    """90 stable answers at 100 ms (10 tokens), 10 canary at 50 ms (4 tokens, 2 refused), one cached, a direct one."""
    records = [answer(i, STABLE, ms=100, completion_tokens=10) for i in range(90)]
    records += [answer(100 + i, CANARY, ms=50, completion_tokens=4, refused=i < 2) for i in range(9)]
    records += [answer(200, CANARY, ms=5, cached=True), answer(200, CANARY, ms=5, cached=True)]  # redelivered
    records.append(answer(300, STABLE, ms=900, alias=None))
    return records


class TestCanaryReport:
    def test_variants_compared(self, registry: ModelRegistry) -> None:
        """Per variant: answers, share against the weights, refusals, latency and tokens (cache hits apart)."""
        report = build_canary_report(traffic(), registry)
        assert report.requests == 100
        stable, canary = report.variants
        assert (stable.model, stable.requests, stable.share) == (STABLE, 90, 0.9)
        assert stable.expected_share == pytest.approx(0.9)
        assert stable.split_z == pytest.approx(0.0)
        assert (canary.model, canary.requests, canary.refused, canary.cached) == (CANARY, 10, 2, 1)
        assert canary.refusal_rate == pytest.approx(0.2)
        assert (canary.latency_p50_ms, stable.latency_p95_ms) == (pytest.approx(50), pytest.approx(100))
        assert canary.mean_completion_tokens == pytest.approx(4.0)
        assert canary.split_ok
        assert stable.split_ok

    def test_off_split_is_flagged(self, registry: ModelRegistry) -> None:
        """50 canary answers out of 100 against a 10 % weight is far beyond 3 sigma."""
        records = [answer(i, STABLE if i % 2 else CANARY, ms=10) for i in range(100)]
        report = build_canary_report(records, registry)
        assert not any(v.split_ok for v in report.variants)
        assert "**off**" in render_canary_markdown(report)

    def test_expected_share_follows_each_tenants_override(self, registry: ModelRegistry) -> None:
        """Tenant ``half`` is expected 50/50: the weights mix per record's tenant."""
        records = [answer(i, STABLE if i % 2 else CANARY, ms=10, tenant="half") for i in range(100)]
        records += [answer(1000 + i, STABLE, ms=10) for i in range(100)]
        stable, canary = build_canary_report(records, registry).variants
        assert (stable.expected_share, canary.expected_share) == (pytest.approx(0.7), pytest.approx(0.3))
        assert stable.split_ok
        assert canary.split_ok
        assert [v.requests for v in build_canary_report(records, registry, tenant="half").variants] == [50, 50]

    def test_filters_and_an_unknown_alias(self, registry: ModelRegistry) -> None:
        """--alias, --since narrow the records; an alias no longer in the registry is reported without weights."""
        assert build_canary_report(traffic(), registry, alias="other").variants == []
        assert build_canary_report(traffic(), registry, since=NOW + timedelta(hours=1)).requests == 0
        old = [answer(i, STABLE, ms=10, alias="retired") for i in range(3)]
        [only] = build_canary_report(old, registry).variants
        assert (only.alias, only.expected_share, only.split_z) == ("retired", None, None)

    def test_shadow_records_are_left_out(self, registry: ModelRegistry) -> None:
        """Replayed answers through the alias change neither the request count nor any variant's figures."""
        live = build_canary_report(traffic(), registry, alias="chat")
        shadow = [answer(500 + i, CANARY, ms=3000, completion_tokens=99, traffic="shadow") for i in range(50)]
        mixed = build_canary_report([*traffic(), *shadow], registry, alias="chat")
        assert mixed.model_dump() == live.model_dump()

    def test_written_like_the_eval_report(self, registry: ModelRegistry, tmp_path: Path) -> None:
        """canary.md and canary.json (with the rates) are written; canary.png when matplotlib is there."""
        written = write_canary_report(build_canary_report(traffic(), registry), tmp_path)
        names = {p.name for p in written}
        assert {"canary.md", "canary.json"} <= names
        data = json.loads((tmp_path / "canary.json").read_text())
        assert [v["model"] for v in data["variants"]] == [STABLE, CANARY]
        assert data["variants"][1]["refusal_rate"] == pytest.approx(0.2)
        markdown = (tmp_path / "canary.md").read_text()
        assert "| chat | gemma-3-270m | 10 | 10.0% | 10.0% (z +0.0) | 20.0% (2) |" in markdown
