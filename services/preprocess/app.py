"""Preprocess service wiring: ``llmops.requests`` (and tenants' ``llmops.requests.<tenant>``) → ``llmops.preprocessed``.

The tenant of a request on a tenant's own topic is that tenant (``tenant_topics``); a body
claiming another is refused ``tenant_mismatch`` before anything else.

Records are consumed in batches (whatever one poll returns, up to ``batch_max_records``):
each request is cleaned on its own and the batch is embedded in one model call. A poll
returns as soon as anything is there, so a lone request does not wait for company.

Quotas come first: a tenant over its limits is answered ``quota_exceeded`` before any work.
When any tenant has limits, the counts are rebuilt from ``llmops.usage`` before consuming
starts and kept current by reading it (every replica, no group).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from services.preprocess.intake import parse_request
from services.preprocess.language import LanguageDetector
from services.preprocess.policy import tenant_policy
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.quota import QuotaTracker
from services.preprocess.reply_policy import ReplyTopicNotAllowedError, ReplyTopicPolicy
from services.preprocess.settings import PreprocessSettings
from services.preprocess.tenant_topics import DEFAULT_TENANT, TenantMismatchError, TenantTopics
from services.preprocess.typos import TypoCorrector
from shared.components.embedder import Embedder
from shared.components.registry import ModelRegistry
from shared.components.usage import UsageRecord
from shared.messaging.envelope import Envelope
from shared.messaging.errors import PipelineError
from shared.messaging.service import StageService
from shared.messaging.stage import BatchProcessFn, ReceivedRecord
from shared.messaging.topic_reader import read_topic

__all__ = ["build_preprocessor", "create_service"]

_MAX_SOURCES = 10_000


def build_preprocessor(settings: PreprocessSettings) -> Preprocessor:
    """The stage logic as the settings describe it (cheap: nothing heavy loads until ``warm_up``)."""
    registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
    return Preprocessor(
        registry,
        settings.core.models_dir,
        max_prompt_chars=settings.max_prompt_chars,
        typos=TypoCorrector(min_length=settings.typo_min_length, min_ratio=settings.typo_min_ratio),
        detector=LanguageDetector(
            min_confidence=settings.language_min_confidence, candidates=settings.language_candidates
        ),
        embedder=Embedder(threads=settings.embed_threads) if settings.embed else None,
        policy=tenant_policy(settings),
        typo_correction=settings.typo_correction,
    )


def create_service(  # noqa: C901 - the stage's wiring: parse, reply topics, quotas, batch logic in one place
    settings: PreprocessSettings | None = None, *, preprocessor: Preprocessor | None = None
) -> StageService:
    """Build the service; heavy state (tokenizers, dictionary, detector, embedder) loads in its start-up.

    A ``preprocessor`` given here is used instead of one built from the settings (tests share a warm one).
    """
    settings = settings or PreprocessSettings()
    topics = settings.core.topics
    tenant_topics = TenantTopics(topics, shared_default_only=settings.tenant_from_topic)
    parse_with_tenant = tenant_topics.parser(parse_request)

    #: The record each parsed request came from (by envelope identity), for ``Prepared.source``; emptied each batch.
    sources: dict[int, str] = {}

    def parse(raw: bytes, record: ReceivedRecord) -> Envelope:
        try:
            env = parse_with_tenant(raw, record)
        except TenantMismatchError as exc:
            service.log.warning("security.tenant_mismatch", tenant=exc.tenant, claimed=exc.claimed, topic=exc.topic)
            raise
        if len(sources) > _MAX_SOURCES:  # batches whose every request expired never reach ``process``
            sources.clear()
        sources[id(env)] = f"{record.topic}/{record.partition}/{record.offset}"
        return env

    service = StageService(
        "preprocess", settings, input_topic=topics.requests, more_input_topics=tenant_topics.inputs()[1:], parse=parse
    )
    if not settings.tenant_from_topic:
        service.log.info("tenants.from_body", topic=topics.requests, reason="tenant_from_topic off (dev mode)")
    tenants = tenant_policy(settings)
    quota = QuotaTracker(tenants)
    replies = ReplyTopicPolicy(tenants, default_topic=topics.responses, shadow_topic=topics.shadow_responses)
    if not replies.configured:
        service.log.info("reply_topics.builtin", patterns=list(replies.builtin))
    service.runner.poison_reply_allowed = lambda answer, record: replies.allowed(
        tenant_topics.by_topic.get(record.topic, DEFAULT_TENANT), answer.reply_to
    )
    rebuild_quota = _count_usage(service, quota) if quota.active else None

    async def warm_up() -> BatchProcessFn:
        pre = preprocessor or build_preprocessor(settings)
        await asyncio.to_thread(pre.warm_up)
        if rebuild_quota is not None:
            await rebuild_quota()

        async def process(envs: list[Envelope]) -> list[Envelope | Exception]:
            read_from = [sources.get(id(env)) for env in envs]
            sources.clear()  # this batch's records: all parsed before the batch logic runs
            # Reply topics first: a refused request is not counted against the tenant's quota.
            refusals: list[PipelineError | None] = list(replies.check_all(envs))
            for refusal in refusals:
                if isinstance(refusal, ReplyTopicNotAllowedError):
                    service.log.warning("security.reply_topic_refused", tenant=refusal.tenant, reply_to=refusal.topic)
            allowed = [
                (env, src) for env, src, refusal in zip(envs, read_from, refusals, strict=True) if refusal is None
            ]
            quota_refusals = iter(quota.admit_all([env for env, _ in allowed], sources=[src for _, src in allowed]))
            refusals = [r if r is not None else next(quota_refusals) for r in refusals]
            admitted = [env for env, refusal in zip(envs, refusals, strict=True) if refusal is None]
            # Off the event loop: heartbeats and publishing go on while the CPU works.
            done = iter(await asyncio.to_thread(pre.process_batch, admitted) if admitted else [])
            results = [refusal if refusal is not None else next(done) for refusal in refusals]
            return [_stamp_source(result, src) for result, src in zip(results, read_from, strict=True)]

        return process

    service.bind_batch(
        warm_up=warm_up,
        route=lambda _env: topics.preprocessed,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
    )
    return service


def _count_usage(service: StageService, quota: QuotaTracker) -> Callable[[], Awaitable[None]]:
    """Feed ``quota`` from the usage topic: every replica reads all of it (no group), live; returns the rebuild.

    The rebuild reads the topic to its end before consuming starts, so a restarted replica knows
    the counts before it admits anything; the subscriber (also from the beginning) keeps them current.
    """
    kafka = service.settings.core.kafka
    topic = service.settings.core.topics.usage

    async def rebuild_quota() -> None:
        try:
            records = await asyncio.wait_for(read_topic(kafka, topic), timeout=60)
        except Exception as exc:  # noqa: BLE001 - the live usage subscriber (from the beginning) catches up
            service.log.warning("quota.rebuild_failed", error=str(exc)[:300])
            return
        counted = 0
        for record in records:
            try:
                quota.record(UsageRecord.model_validate_json(record.value))
            except (ValidationError, ValueError):
                continue  # the live subscriber dead-letters it
            counted += 1
        service.log.info("quota.rebuilt", usage_records=counted)

    async def on_usage(usage: UsageRecord) -> None:
        quota.record(usage)

    service.follow(topic, UsageRecord, on_usage, what="usage record")

    return rebuild_quota


def _stamp_source(result: Envelope | Exception, source: str | None) -> Envelope | Exception:
    """The prepared request with ``prepared.source`` set (usage and quotas count served requests by it)."""
    if not isinstance(result, Envelope) or result.prepared is None or source is None:
        return result
    return result.model_copy(update={"prepared": result.prepared.model_copy(update={"source": source})})
