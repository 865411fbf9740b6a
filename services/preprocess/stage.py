"""The preprocess stage: ``llmops.requests`` (and tenants' ``llmops.requests.<tenant>``) → ``llmops.preprocessed``.

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

from pydantic import ValidationError

from services.preprocess.intake import parse_request
from services.preprocess.language import LanguageDetector
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.quota import QuotaTracker
from services.preprocess.reply_policy import ReplyTopicNotAllowedError, ReplyTopicPolicy
from services.preprocess.settings import PreprocessSettings
from services.preprocess.tenant_switches import tenant_policy
from services.preprocess.tenant_topics import DEFAULT_TENANT, TenantMismatchError, TenantTopics
from services.preprocess.typos import TypoCorrector
from shared.contracts.envelope import Envelope
from shared.contracts.errors import PipelineError
from shared.contracts.stage import Delivery, Output, Outputs, SideHandler, Stage, StageContext
from shared.contracts.topology import Role
from shared.models.registry import ModelRegistry
from shared.models.usage import UsageRecord
from shared.runtime.logging import get_logger
from shared.runtime.records import ReceivedRecord
from shared.runtime.topic_reader import read_topic
from shared.text.embedder import Embedder

__all__ = ["PreprocessStage", "build_preprocessor"]

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


class PreprocessStage(Stage):
    """Admits each request (tenant, reply topic, quota), then cleans, tokenizes, budgets and embeds it.

    A ``preprocessor`` given here is used instead of one built from the settings (tests share a warm one).

    Example:
        >>> stage = PreprocessStage(PreprocessSettings())
        >>> await stage.warm_up(service)
        >>> (await stage.process([request]))[0][0].role
        <Role.PREPROCESSED: 'preprocessed'>

    """

    name = "preprocess"

    def __init__(self, settings: PreprocessSettings, *, preprocessor: Preprocessor | None = None) -> None:
        self.settings = settings
        self.delivery = Delivery("batch", settings.batch_max_records, settings.batch_timeout_ms)
        self.log = get_logger("llmops.preprocess")
        topics = settings.core.topics
        self.tenant_topics = TenantTopics(topics, shared_default_only=settings.tenant_from_topic)
        self._parse_with_tenant = self.tenant_topics.parser(parse_request)
        if not settings.tenant_from_topic:
            self.log.info("tenants.from_body", topic=topics.requests, reason="tenant_from_topic off (dev mode)")
        tenants = tenant_policy(settings)
        self.quota = QuotaTracker(tenants)
        self.replies = ReplyTopicPolicy(tenants, default_topic=topics.responses, shadow_topic=topics.shadow_responses)
        if not self.replies.configured:
            self.log.info("reply_topics.builtin", patterns=list(self.replies.builtin))
        self._preprocessor = preprocessor
        self._warm: Preprocessor | None = None
        #: The record each parsed request came from (by envelope identity): ``Prepared.source``, and whether its
        #: partition's previous owner may have handled it (``maybe_redelivered``); emptied each batch.
        self._records: dict[int, ReceivedRecord] = {}

    def parse(self, raw: bytes, record: ReceivedRecord) -> Envelope:
        """The request in a record, its tenant from the topic it was written to; where it came from is kept."""
        try:
            env = self._parse_with_tenant(raw, record)
        except TenantMismatchError as exc:
            self.log.warning("security.tenant_mismatch", tenant=exc.tenant, claimed=exc.claimed, topic=exc.topic)
            raise
        if len(self._records) > _MAX_SOURCES:  # batches whose every request expired never reach ``process``
            self._records.clear()
        self._records[id(env)] = record
        return env

    def may_answer_poison(self, answer: Envelope, record: ReceivedRecord) -> bool:
        """An unreadable request's error answer goes to its reply topic only when its tenant may use that topic."""
        return self.replies.allowed(self.tenant_topics.by_topic.get(record.topic, DEFAULT_TENANT), answer.reply_to)

    async def warm_up(self, context: StageContext) -> None:  # noqa: ARG002 - publishes nothing of its own
        """Load tokenizers, the dictionary, the language detector and the embedder; rebuild quota counts."""
        pre = self._preprocessor or build_preprocessor(self.settings)
        await asyncio.to_thread(pre.warm_up)
        if self.quota.active:
            await self.rebuild_quota()
        self._warm = pre

    async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
        """Reply topics and quotas checked, then the admitted requests prepared (and embedded) together."""
        if self._warm is None:
            msg = "preprocess: warm_up() was not awaited"
            raise RuntimeError(msg)
        records = [self._records.get(id(env)) for env in batch]
        read_from = [f"{r.topic}/{r.partition}/{r.offset}" if r else None for r in records]
        redelivered = [r is not None and r.maybe_redelivered for r in records]
        self._records.clear()  # this batch's records: all parsed before the batch logic runs
        # Reply topics first: a refused request is not counted against the tenant's quota.
        refusals: list[PipelineError | None] = list(self.replies.check_all(batch))
        for refusal in refusals:
            if isinstance(refusal, ReplyTopicNotAllowedError):
                self.log.warning("security.reply_topic_refused", tenant=refusal.tenant, reply_to=refusal.topic)
        allowed = [i for i, refusal in enumerate(refusals) if refusal is None]
        over_before = self.quota.over_limit_redeliveries
        quota_refusals = iter(
            self.quota.admit_all(
                [batch[i] for i in allowed],
                sources=[read_from[i] for i in allowed],
                maybe_redelivered=[redelivered[i] for i in allowed],
            )
        )
        if over := self.quota.over_limit_redeliveries - over_before:
            self.log.info("quota.admitted_as_redelivery", requests=over)
        refusals = [r if r is not None else next(quota_refusals) for r in refusals]
        admitted = [env for env, refusal in zip(batch, refusals, strict=True) if refusal is None]
        # Off the event loop: heartbeats and publishing go on while the CPU works.
        done = iter(await asyncio.to_thread(self._warm.process_batch, admitted) if admitted else [])
        results = [refusal if refusal is not None else next(done) for refusal in refusals]
        return [_as_outputs(result, src) for result, src in zip(results, read_from, strict=True)]

    def side_handlers(self) -> list[SideHandler]:
        """Usage records keep the quota counts current (read only when some tenant has limits)."""
        if not self.quota.active:
            return []
        return [SideHandler(Role.USAGE, UsageRecord, self.on_usage, what="usage record")]

    async def on_usage(self, usage: UsageRecord) -> Outputs:
        """Count a served request against its tenant's quota."""
        self.quota.record(usage)
        return []

    async def rebuild_quota(self) -> None:
        """Read the usage topic to its end before consuming starts, so a restarted replica knows the counts.

        The usage reader (also from the beginning) keeps them current afterwards.
        """
        core = self.settings.core
        try:
            records = await asyncio.wait_for(read_topic(core.kafka, core.topics.usage), timeout=60)
        except Exception as exc:  # noqa: BLE001 - the live usage reader (from the beginning) catches up
            self.log.warning("quota.rebuild_failed", error=str(exc)[:300])
            return
        counted = 0
        for record in records:
            try:
                self.quota.record(UsageRecord.model_validate_json(record.value))
            except (ValidationError, ValueError):
                continue  # the live reader dead-letters it
            counted += 1
        self.log.info("quota.rebuilt", usage_records=counted)


def _as_outputs(result: Envelope | Exception, source: str | None) -> Outputs | Exception:
    """The prepared request with ``prepared.source`` set (usage and quotas count served requests by it)."""
    if not isinstance(result, Envelope):
        return result
    if result.prepared is not None and source is not None:
        result = result.model_copy(update={"prepared": result.prepared.model_copy(update={"source": source})})
    return [Output.of(Role.PREPROCESSED, result)]
