"""Per-tenant quotas, enforced as the first thing preprocess does: requests per minute, tokens per day.

Counts come from two places: the requests this replica admits (at once) and the usage records
on ``llmops.usage`` (every replica's finished requests, and the history a restarted replica
rebuilds from). Both are keyed by the served request (``served_key``: the request id at the
record it was read from), so a redelivered record is not counted twice, yet a client reusing one
request id for many records is counted for each (issue 23: it used to pass free). Only admitted
requests count: a refused request does not push the window further out.

Only tenants with limits are counted, and a tenant's counts go once they are empty, so the state
is bounded by the limited tenants' traffic of a minute (and a day's request ids for token limits).

Shadow requests (``llmops replay``, ``llmops eval run``) are counted apart from the tenant's live
traffic, against the same limits: a replay neither uses up the users' quota nor depends on how busy
they were, and a client that marks its own requests shadow (to dodge its quota) meets the limits there.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.preprocess.tenant_switches import TenantPolicy, TenantPolicyFile
from shared.contracts.envelope import Envelope
from shared.contracts.errors import PipelineError
from shared.contracts.shadow import is_shadow
from shared.models.usage import UsageRecord, served_key

__all__ = ["QuotaExceededError", "QuotaTracker"]

_MINUTE = timedelta(minutes=1)


class QuotaExceededError(PipelineError):
    """A tenant is over one of its limits; ``retry_after_s`` says when a retry can succeed.

    Not dead-lettered: the request was fine, the tenant was over its limit, and a tenant
    hammering past its quota must not flood the DLQ (the refusal is counted and logged).
    """

    dead_letter = False

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__("quota_exceeded", message, retriable=True, retry_after_s=retry_after_s)


def _day(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class _TenantCounts:
    """One tenant's requests of the last minute and tokens of the current UTC day."""

    def __init__(self) -> None:
        self.requests: deque[tuple[datetime, str]] = deque()  # admission times, oldest first
        self.request_ids: set[str] = set()
        self.day: datetime | None = None
        self.tokens = 0
        self.token_ids: set[str] = set()

    def prune(self, now: datetime) -> None:
        while self.requests and self.requests[0][0] <= now - _MINUTE:
            _, request_id = self.requests.popleft()
            self.request_ids.discard(request_id)
        today = _day(now)
        if self.day != today:
            self.day, self.tokens, self.token_ids = today, 0, set()

    def add_request(self, request_id: str, at: datetime) -> None:
        if request_id in self.request_ids:
            return
        self.request_ids.add(request_id)
        # Usage records arrive out of admission order: keep the window sorted by time.
        if not self.requests or self.requests[-1][0] <= at:
            self.requests.append((at, request_id))
        else:
            self.requests = deque(sorted([*self.requests, (at, request_id)]))


class QuotaTracker:
    """Admits or refuses requests by the tenants' limits in the policy file.

    Example:
        >>> policy = TenantPolicyFile.model_validate({"tenants": {"acme": {"requests_per_minute": 2}}})
        >>> quota = QuotaTracker(policy)
        >>> quota.admit("acme", "r1"); quota.admit("acme", "r2")
        >>> quota.admit("acme", "r3")
        Traceback (most recent call last):
        QuotaExceededError: quota_exceeded: tenant acme is over 2 requests per minute; retry in 60 s

    """

    def __init__(self, policy: TenantPolicyFile) -> None:
        self.policy = policy
        #: Counts by (tenant, shadow traffic or not), only for tenants with limits, dropped once empty.
        self._tenants: dict[tuple[str, bool], _TenantCounts] = {}
        #: Requests admitted over the limits because a partition's previous owner may have admitted them.
        self.over_limit_redeliveries = 0

    def __len__(self) -> int:
        """How many (tenant, traffic) counts are held."""
        return len(self._tenants)

    @property
    def active(self) -> bool:
        """Whether any tenant has a limit (otherwise there is nothing to count)."""
        return any(self._limited(tenant) for tenant in self.policy.tenants)

    def _limited(self, tenant: str) -> bool:
        limits = self.policy.tenants.get(tenant)
        return limits is not None and (limits.requests_per_minute is not None or limits.tokens_per_day is not None)

    def _counts(self, tenant: str, now: datetime, *, shadow: bool = False) -> _TenantCounts:
        counts = self._tenants.setdefault((tenant, shadow), _TenantCounts())
        counts.prune(now)
        return counts

    def sweep(self, now: datetime | None = None) -> None:
        """Drop the counts that hold nothing any more (no request in the window, no token today)."""
        now = now or datetime.now(UTC)
        for where, counts in list(self._tenants.items()):
            counts.prune(now)
            if not counts.requests and not counts.tokens:
                del self._tenants[where]

    def admit(
        self,
        tenant: str,
        request_id: str,
        *,
        now: datetime | None = None,
        shadow: bool = False,
        source: str | None = None,
        maybe_redelivered: bool = False,
    ) -> bool:
        """Count the request in, or raise ``QuotaExceededError`` (a redelivered admitted request passes again).

        ``shadow``: counted in the tenant's shadow traffic, apart from its live traffic, under the same limits.
        ``source``: the record the request was read from (``Prepared.source``); the same id read from another
        record is another request. ``maybe_redelivered``: a partition's previous owner may have admitted and
        answered it already (``shared.runtime.redelivery``); it is counted and admitted even over the limits,
        so one request never gets both an answer and a 429. Returns whether it was admitted over the limits.
        """
        limits = self.policy.tenants.get(tenant)
        if limits is None or (limits.requests_per_minute is None and limits.tokens_per_day is None):
            return False
        now = now or datetime.now(UTC)
        counts = self._counts(tenant, now, shadow=shadow)
        if shadow:
            tenant = f"{tenant} (shadow traffic)"
        served = served_key(request_id, source)
        if served in counts.request_ids:
            return False
        try:
            self._check(tenant, limits, counts, now)
            over = False
        except QuotaExceededError:
            if not maybe_redelivered:
                raise
            over = True
        counts.add_request(served, now)
        return over

    @staticmethod
    def _check(tenant: str, limits: TenantPolicy, counts: _TenantCounts, now: datetime) -> None:
        """Raise ``QuotaExceededError`` when ``counts`` leave no room under ``limits``."""
        if limits.tokens_per_day is not None and counts.tokens >= limits.tokens_per_day:
            retry = (_day(now) + timedelta(days=1) - now).total_seconds()
            msg = f"tenant {tenant} used {counts.tokens} of {limits.tokens_per_day} tokens today (UTC)"
            raise QuotaExceededError(f"{msg}; retry in {math.ceil(retry)} s", retry_after_s=math.ceil(retry))
        if limits.requests_per_minute is not None and len(counts.requests) >= limits.requests_per_minute:
            # The request whose leaving the window frees a place (a limit of 0 never frees one).
            frees = counts.requests[-limits.requests_per_minute][0] if limits.requests_per_minute else now
            retry = max(1.0, (frees + _MINUTE - now).total_seconds())
            msg = f"tenant {tenant} is over {limits.requests_per_minute} requests per minute"
            raise QuotaExceededError(f"{msg}; retry in {math.ceil(retry)} s", retry_after_s=math.ceil(retry))

    def admit_all(
        self,
        envs: Sequence[Envelope],
        *,
        now: datetime | None = None,
        sources: Sequence[str | None] | None = None,
        maybe_redelivered: Sequence[bool] | None = None,
    ) -> list[QuotaExceededError | None]:
        """``admit`` each request in order: None where admitted, the error where refused; then ``sweep``.

        ``over_limit_redeliveries`` counts the requests admitted over the limits as possible redeliveries.
        """
        results: list[QuotaExceededError | None] = []
        marks = maybe_redelivered or [False] * len(envs)
        for env, source, mark in zip(envs, sources or [None] * len(envs), marks, strict=True):
            try:
                over = self.admit(
                    env.tenant, env.request_id, now=now, shadow=is_shadow(env), source=source, maybe_redelivered=mark
                )
                self.over_limit_redeliveries += over
            except QuotaExceededError as exc:
                results.append(exc)
            else:
                results.append(None)
        self.sweep(now)
        return results

    def record(self, usage: UsageRecord, *, now: datetime | None = None) -> None:
        """Count a finished request's tokens (today's) and its place in the minute window (live or shadow).

        Tenants without limits are not counted at all: their records would only grow the state (issue 23).
        """
        if not self._limited(usage.tenant):
            return
        now = now or datetime.now(UTC)
        counts = self._counts(usage.tenant, now, shadow=usage.shadow)
        if usage.requested_at > now - _MINUTE:
            counts.add_request(usage.served, usage.requested_at)
        if _day(usage.at) == counts.day and usage.served not in counts.token_ids:
            counts.token_ids.add(usage.served)
            counts.tokens += usage.total_tokens

    def used(self, tenant: str, *, now: datetime | None = None, shadow: bool = False) -> tuple[int, int]:
        """(requests in the last minute, tokens today) counted for ``tenant``'s live (or shadow) traffic."""
        counts = self._counts(tenant, now or datetime.now(UTC), shadow=shadow)
        return len(counts.requests), counts.tokens
