"""Which reply topics each tenant may name in ``reply_to`` (issue 14).

Postprocess publishes the answer wherever ``reply_to`` says, so without this check a tenant
could have its answers, or worse another tenant's conversation continued, delivered to a
topic it does not own. The allowed topics come from the tenant configuration (docs/tenants.md,
``LLMOPS_TENANTS_FILE``; the old ``LLMOPS_PREPROCESS_TENANTS_PATH`` is merged into it):

    default_reply_topics: ["llmops.responses.{tenant}"]   # every tenant: its own topic
    tenants:
      acme: {reply_topics: ["llmops.responses.acme", "llmops.responses.gateway-*"]}

Patterns are shell globs (``*``, ``?``, ``[...]``); ``{tenant}`` stands for the request's
tenant, matched literally (a tenant named ``*`` does not widen the pattern). A request
without ``reply_to`` asks for the default responses topic and is checked like any other.

Without any reply-topic setting (nothing configured) the built-in patterns apply
(issue 23: the check used to be off then, in the secure profiles too): the shared responses
topic, the tenant's own ``<responses>.{tenant}`` and ``<responses>.{tenant}.*``, and the
gateways' ``<responses>.gateway-*`` (a gateway delivers only answers of its own tenant's
requests: the SDK checks the answer's tenant). Never another tenant's topic, never an internal one.

The shadow reply topic (``llmops.responses.shadow``) is reserved, in dev mode too: a shadow request
(``llmops replay``, evaluation) may be answered there only, whatever its tenant's patterns, and
no other request may name it. So shadow answers never reach a user's topic, and nobody's live
answers land among the shadow ones. A refused shadow request is answered on the shadow topic.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from services.preprocess.tenant_switches import TenantPolicyFile
from shared.contracts.envelope import Envelope
from shared.contracts.errors import PipelineError
from shared.contracts.shadow import is_shadow

__all__ = ["ReplyTopicNotAllowedError", "ReplyTopicPolicy"]

_TENANT = "{tenant}"


class ReplyTopicNotAllowedError(PipelineError):
    """The request names a reply topic its tenant may not use.

    Answered on the default responses topic, never on the topic the request named (that is the
    point of refusing); not dead-lettered (a refusal by policy, like a quota), but counted and logged.
    """

    dead_letter = False
    answer_on_default_topic = True

    def __init__(self, tenant: str, topic: str) -> None:
        super().__init__("reply_topic_not_allowed", f"tenant {tenant!r} may not receive answers on topic {topic!r}")
        self.tenant = tenant
        self.topic = topic


def _compile(pattern: str, tenant: str) -> re.Pattern[str]:
    """A glob with ``{tenant}`` replaced by the tenant's name, matched literally."""
    parts = [fnmatch.translate(part).removeprefix("(?s:").removesuffix(")\\Z") for part in pattern.split(_TENANT)]
    return re.compile("(?s:" + re.escape(tenant).join(parts) + ")\\Z")


class ReplyTopicPolicy:
    """Checks ``reply_to`` against the tenant's allowed patterns.

    Example:
        >>> policy = ReplyTopicPolicy(TenantPolicyFile.model_validate(
        ...     {"default_reply_topics": ["llmops.replies.{tenant}"]}), default_topic="llmops.responses")
        >>> policy.allowed("acme", "llmops.replies.acme")
        True
        >>> policy.allowed("acme", "llmops.replies.globex")
        False

    """

    def __init__(self, policy: TenantPolicyFile, *, default_topic: str, shadow_topic: str | None = None) -> None:
        self.policy = policy
        self.default_topic = default_topic
        self.shadow_topic = shadow_topic
        #: The patterns every tenant gets when the file configures none.
        self.builtin = (
            default_topic,
            f"{default_topic}.{_TENANT}",
            f"{default_topic}.{_TENANT}.*",
            f"{default_topic}.gateway-*",
        )

    @property
    def configured(self) -> bool:
        """Whether the file sets reply topics (otherwise the built-in patterns apply)."""
        return self.policy.default_reply_topics is not None or any(
            t.reply_topics is not None for t in self.policy.tenants.values()
        )

    def patterns(self, tenant: str) -> Sequence[str]:
        """The tenant's own patterns, else the file's defaults, else none; the built-in ones when the file sets none."""
        if not self.configured:
            return self.builtin
        own = self.policy.tenants.get(tenant)
        if own is not None and own.reply_topics is not None:
            return own.reply_topics
        return self.policy.default_reply_topics or []

    def allowed(self, tenant: str, topic: str | None) -> bool:
        """Whether answers for ``tenant`` may go to ``topic`` (None: the default responses topic)."""
        target = topic or self.default_topic
        return any(_compile(pattern, tenant).match(target) for pattern in self.patterns(tenant))

    def check(self, env: Envelope) -> ReplyTopicNotAllowedError | None:
        """None when the request's reply topic is allowed, else the refusal to answer with."""
        if self.shadow_topic is not None:
            if is_shadow(env):
                target = env.reply_to or self.shadow_topic  # the shadow default (StageRunner.reply_topic)
                return None if target == self.shadow_topic else ReplyTopicNotAllowedError(env.tenant, target)
            if env.reply_to == self.shadow_topic:
                return ReplyTopicNotAllowedError(env.tenant, env.reply_to)
        if self.allowed(env.tenant, env.reply_to):
            return None
        return ReplyTopicNotAllowedError(env.tenant, env.reply_to or self.default_topic)

    def check_all(self, envs: Sequence[Envelope]) -> list[ReplyTopicNotAllowedError | None]:
        """``check`` each request, in order."""
        return [self.check(env) for env in envs]
