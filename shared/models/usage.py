"""Token accounting: one ``UsageRecord`` per answered request on ``llmops.usage``, and their sums.

Postprocess writes a record for every final answer it sends (generated, cached or refused);
``llmops usage`` sums them per tenant and model, and preprocess rebuilds its quota counts
from them. Prices come from the model registry (``price`` of each entry).

A shadow request's record (``llmops replay``, ``llmops eval run``) says ``traffic="shadow"``:
it is the operator's, not the tenant's, so quotas, the canary report and ``llmops usage``
(unless asked) leave it out. Records written before the field existed read as ``live``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Envelope
from shared.contracts.shadow import Traffic, traffic
from shared.models.registry import ModelPrice, ModelRegistry, UnknownModelError

__all__ = ["UsageRecord", "UsageTotal", "dedupe", "parse_since", "served_key", "summarize", "usage_record"]


def _now() -> datetime:
    return datetime.now(UTC)


class UsageRecord(BaseModel):
    """What one request used, and what the cache saved (the value on ``llmops.usage``)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    request_id: str
    tenant: str
    source: str | None = Field(
        default=None, description="The request record served (prepared.source): a reused request id is billed again."
    )
    model: str = Field(description="The model that answered (an alias's variant).")
    alias: str | None = Field(default=None, description="The registry alias the request named, if any.")
    requested_at: datetime = Field(description="When the client made the request (the envelope's created_at).")
    at: datetime = Field(default_factory=_now, description="When the answer was sent.")
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cached: bool = Field(default=False, description="Answered from the semantic cache.")
    refused: bool = False
    saved_prompt_tokens: int = Field(default=0, ge=0, description="Prompt tokens the cache hit did not use.")
    saved_completion_tokens: int = Field(default=0, ge=0, description="Tokens the cache hit did not generate.")
    cost: float = Field(default=0.0, ge=0.0, description="Price of the tokens used, from the registry.")
    saved_cost: float = Field(default=0.0, ge=0.0, description="Price of the tokens the cache saved.")
    currency: str = "USD"
    traffic: Traffic = Field(
        default="live", description="shadow: a replayed or evaluation request (unbilled, outside quotas); else live."
    )

    @property
    def served(self) -> str:
        """What makes the record one served request: its id and the record it was read from."""
        return served_key(self.request_id, self.source)

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens used."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def shadow(self) -> bool:
        """Whether a shadow request (the operator's, not the tenant's) wrote it."""
        return self.traffic == "shadow"


def served_key(request_id: str, source: str | None) -> str:
    """One served request: a request id alone (records before issue 23), else the id at its request record."""
    return f"{request_id}@{source}" if source else request_id


def usage_record(env: Envelope, registry: ModelRegistry) -> UsageRecord:
    """The record of a final answer; cache hits use no tokens and save the original request's.

    Example:
        >>> usage_record(final_answer, ModelRegistry.load()).total_tokens
        42

    """
    completion = env.completion
    hit = env.cache.hit if env.cache is not None else None
    model = (
        completion.model
        if completion
        else hit.model
        if hit
        else (env.prepared.model if env.prepared else env.require_request().model or registry.default)
    )
    try:
        price = registry.get(model).price
    except UnknownModelError:
        price = ModelPrice()
    prompt = completion.tokens_in if completion else 0
    generated = completion.tokens_out if completion else 0
    saved_in = hit.tokens_in if hit else 0
    saved_out = hit.tokens_out if hit else 0
    return UsageRecord(
        request_id=env.request_id,
        tenant=env.tenant,
        source=env.prepared.source if env.prepared else None,
        model=model,
        alias=env.prepared.alias if env.prepared else None,
        requested_at=env.created_at,
        prompt_tokens=prompt,
        completion_tokens=generated,
        cached=hit is not None,
        refused=env.response is not None and env.response.refused,
        saved_prompt_tokens=saved_in,
        saved_completion_tokens=saved_out,
        cost=price.cost(prompt, generated),
        saved_cost=price.cost(saved_in, saved_out),
        currency=price.currency,
        traffic=traffic(env),
    )


def dedupe(records: Iterable[UsageRecord]) -> list[UsageRecord]:
    """One record per served request (a redelivered answer writes its record again), the first kept.

    Per tenant and request record (issue 23): request ids are chosen by clients, so one tenant's id must
    not hide another's bill, and a client reusing one id for many requests is billed for each of them.
    """
    seen: dict[tuple[str, str], UsageRecord] = {}
    for record in records:
        seen.setdefault((record.tenant, record.served), record)
    return list(seen.values())


@dataclass
class UsageTotal:
    """The sums of one tenant's records for one model (and the alias that routed to it, if any), of one traffic."""

    tenant: str
    model: str
    alias: str | None = None
    traffic: Traffic = "live"
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    saved_tokens: int = 0
    cost: float = 0.0
    saved_cost: float = 0.0
    currency: str = "USD"

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens used."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, record: UsageRecord) -> None:
        """Count one record in."""
        self.requests += 1
        self.cached += int(record.cached)
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        self.saved_tokens += record.saved_prompt_tokens + record.saved_completion_tokens
        self.cost += record.cost
        self.saved_cost += record.saved_cost
        self.currency = record.currency

    def as_dict(self) -> dict[str, object]:
        """The JSON form (``llmops usage --json``)."""
        return {
            "tenant": self.tenant,
            "model": self.model,
            "alias": self.alias,
            "traffic": self.traffic,
            "requests": self.requests,
            "cached": self.cached,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "saved_tokens": self.saved_tokens,
            "cost": round(self.cost, 9),
            "saved_cost": round(self.saved_cost, 9),
            "currency": self.currency,
        }


def summarize(
    records: Iterable[UsageRecord],
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    include_shadow: bool = False,
) -> list[UsageTotal]:
    """Sums per (tenant, model, alias, traffic), sorted, over records of ``tenant`` answered at or after ``since``.

    Shadow records are left out unless ``include_shadow``; then they are summed in rows of their own.
    """
    totals: dict[tuple[str, str, str, str], UsageTotal] = {}
    for record in dedupe(records):
        if tenant is not None and record.tenant != tenant:
            continue
        if since is not None and record.at < since:
            continue
        if record.shadow and not include_shadow:
            continue
        key = (record.tenant, record.model, record.alias or "", record.traffic)
        totals.setdefault(key, UsageTotal(record.tenant, record.model, record.alias, record.traffic)).add(record)
    return [totals[k] for k in sorted(totals)]


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``--since``: an ISO date or time (UTC when no zone is given) or an age such as ``30m``, ``24h``, ``7d``."""
    match = _RELATIVE.match(value.strip().lower())
    if match:
        amount, unit = match.groups()
        return (now or _now()) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        msg = f"--since takes an ISO time (2026-01-31, 2026-01-31T12:00) or an age (30m, 24h, 7d), not {value!r}"
        raise ValueError(msg) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
