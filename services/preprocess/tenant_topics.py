"""The tenant of a request comes from the topic it was written to, not from its body (issue 14, T7).

A tenant listed in ``LLMOPS_TOPIC_REQUEST_TENANTS`` writes to ``<prefix>requests.<tenant>``, and
Kafka ACLs let only that tenant's principal (and the gateway, which authenticates tenants itself)
write there. So the topic is an authenticated statement of who is asking; the body's ``tenant``
is only a claim:

- on a tenant's topic the request *is* that tenant's: a body naming no tenant (or ``default``) is
  given it; a body naming another tenant is refused (``tenant_mismatch``);
- on the shared ``<prefix>requests`` topic, in dev mode (the default) the body's tenant is taken
  as it is; with ``LLMOPS_PREPROCESS_TENANT_FROM_TOPIC`` (security on) only the default tenant
  may be claimed there, so nobody reaches a tenant's data, quota or memory without its topic.

A refusal is answered on the default responses topic (never on the reply topic the forged
request named), dead-lettered with the raw bytes and the source topic, logged and counted.
"""

from __future__ import annotations

from shared.contracts.envelope import Envelope
from shared.contracts.errors import RefusedRequestError
from shared.runtime.runner import ParseFn, ReceivedRecord
from shared.runtime.settings import TopicSettings

__all__ = ["DEFAULT_TENANT", "TenantMismatchError", "TenantTopics"]

#: The tenant of a request that names none (``Envelope.tenant``'s default).
DEFAULT_TENANT: str = Envelope.model_fields["tenant"].default


class TenantMismatchError(RefusedRequestError):
    """The request's body claims a tenant its topic does not stand for."""

    answer_on_default_topic = True

    def __init__(self, envelope: Envelope, *, claimed: str, topic: str) -> None:
        if envelope.tenant == DEFAULT_TENANT:
            why = f"topic {topic!r} carries only tenant {DEFAULT_TENANT!r}; tenant {claimed!r} has a topic of its own"
        else:
            why = f"topic {topic!r} belongs to tenant {envelope.tenant!r}"
        super().__init__("tenant_mismatch", f"the request claims tenant {claimed!r}, but {why}", envelope=envelope)
        self.tenant = envelope.tenant
        self.claimed = claimed
        self.topic = topic


class TenantTopics:
    """Which tenant each request topic stands for, and the check of a request's claim against it.

    Example:
        >>> topics = TenantTopics(TopicSettings(request_tenants=["acme"]), shared_default_only=True)
        >>> topics.inputs()
        ['llmops.requests', 'llmops.requests.acme']
        >>> topics.assign(envelope_claiming_globex, "llmops.requests.acme")
        Traceback (most recent call last):
        TenantMismatchError: tenant_mismatch: the request claims tenant 'globex', but topic ...

    """

    def __init__(self, topics: TopicSettings, *, shared_default_only: bool) -> None:
        self.shared_topic = topics.requests
        self.by_topic = topics.tenant_request_topics()
        self.shared_default_only = shared_default_only

    def inputs(self) -> list[str]:
        """Every request topic preprocess reads: the shared one first, then the tenants'."""
        return [self.shared_topic, *self.by_topic]

    def assign(self, env: Envelope, topic: str) -> Envelope:
        """``env`` with the tenant its topic stands for; raises ``TenantMismatchError`` when the body disagrees."""
        tenant = self.by_topic.get(topic)
        if tenant is None:  # the shared topic (or one this policy does not know: the body decides, as before)
            if self.shared_default_only and topic == self.shared_topic and env.tenant != DEFAULT_TENANT:
                refused = env.model_copy(update={"tenant": DEFAULT_TENANT})
                raise TenantMismatchError(refused, claimed=env.tenant, topic=topic)
            return env
        if env.tenant not in {tenant, DEFAULT_TENANT}:
            raise TenantMismatchError(env.model_copy(update={"tenant": tenant}), claimed=env.tenant, topic=topic)
        env.tenant = tenant
        return env

    def parser(self, parse: ParseFn) -> ParseFn:
        """``parse`` followed by ``assign`` with the record's topic: the service's intake."""

        def parse_with_tenant(raw: bytes, record: ReceivedRecord) -> Envelope:
            return self.assign(parse(raw, record), record.topic)

        return parse_with_tenant
