"""The safety stage's work: check retrieved chunks and the user's messages, and apply the tenant's policy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import structlog

from services.safety.context_memo import ContextMemo
from services.safety.policy_file import SafetyPolicy
from shared.contracts.envelope import ChatMessage, Document, Envelope, Finding, Safety
from shared.contracts.errors import PipelineError
from shared.contracts.shadow import POLICY_METADATA_KEY, is_shadow
from shared.guards import GuardResources, GuardSuite, Placeholders
from shared.guards.findings import GuardFinding
from shared.guards.guard_suite import Stage
from shared.models.chat_render import render_plain
from shared.text.embedder import decode_vector

__all__ = ["SafetyChecker"]


class SafetyChecker:
    """Drops poisoned retrieved chunks, scans every message a client wrote, and decides the verdict.

    Verdict: ``block`` if any finding's action is block (the refusal names the category, never
    the matched text), else ``redact`` if any is redact (typed placeholders, the map in
    ``safety.placeholders``), else ``allow``. A chunk with injected instructions is removed
    from the prompt and listed in ``safety.dropped_documents``; the request goes on. A changed
    prompt is written to the safety section; the grounding section is left as it was.

    The tenant's policy applies; a shadow request (``llmops replay --candidate policy=clinic``) may
    name another policy of the file in its ``policy`` metadata, to see what that policy would do
    to real traffic. Live requests cannot: their metadata comes from the client.

    Example:
        >>> checker = SafetyChecker(SafetyPolicy.load())
        >>> checker.warm_up()
        >>> checker.process(envelope).safety.verdict
        'allow'

    """

    def __init__(
        self, policy: SafetyPolicy, resources: GuardResources | None = None, *, memo: ContextMemo | None = None
    ) -> None:
        self.policy = policy
        self.resources = resources or GuardResources()
        #: Findings of recently checked retrieved chunks (``ContextMemo``): a chunk seen again is not checked again.
        self.memo = memo if memo is not None else ContextMemo()
        self._suites: dict[tuple[str, Stage], GuardSuite] = {}

    def warm_up(self) -> None:
        """Load the models and build every tenant's guards."""
        self.resources.warm_up()
        for tenant in ["default", *self.policy.tenants]:
            self.suite(tenant, "input").warm_up()
            self.suite(tenant, "context").warm_up()

    def _policy_key(self, tenant: str) -> str:
        return tenant if tenant in self.policy.tenants else "default"

    def suite(self, tenant: str, stage: Stage) -> GuardSuite:
        """The tenant's guard for a stage (unknown tenants share the default's)."""
        key = (self._policy_key(tenant), stage)
        if key not in self._suites:
            self._suites[key] = GuardSuite(self.policy.for_tenant(key[0]), stage, self.resources)
        return self._suites[key]

    def policy_name(self, env: Envelope) -> str:
        """The named policy the request is checked under: a shadow request's ``policy`` metadata, else its tenant."""
        requested = env.request.metadata.get(POLICY_METADATA_KEY, "").strip() if env.request else ""
        if not requested or not is_shadow(env):
            return env.tenant
        if requested != "default" and requested not in self.policy.tenants:
            known = ", ".join(["default", *sorted(self.policy.tenants)])
            raise PipelineError("unknown_policy", f"no safety policy named {requested!r}; known: {known}")
        return requested

    def process(self, env: Envelope) -> Envelope:
        """Fill ``safety``."""
        if env.grounding is None:
            raise PipelineError("invalid_message", "safety needs the grounding section")
        name = self.policy_name(env)
        policy = self.policy.for_tenant(name)
        messages = list(env.grounding.messages)
        findings: list[Finding] = []

        dropped = self._poisoned(name, env.grounding.documents, findings)
        if dropped:
            messages = [_without(m, [d.text for d in dropped]) for m in messages]

        placeholders = Placeholders()
        blocking: GuardFinding | None = None
        suite = self.suite(name, "input")
        ner_budget = suite.new_ner_budget()  # one for the request's texts: its NER CPU is bounded (issue 23)
        for index, msg in enumerate(messages):
            # Every message a client can write is checked, whatever its role (issue 23: a blocked SSN once
            # passed in a system message). The template's system text is the operator's: within the system
            # message only the client's own system text, which the template embeds, is scanned.
            texts = [msg.content] if msg.role != "system" else _client_system_texts(env, msg.content)
            content = msg.content
            for text in texts:
                last = msg.role == "user" and env.prepared is not None and text == env.prepared.text
                result = suite.scan(
                    text,
                    embedding=self._prepared_embedding(env) if last else None,
                    token_count=env.prepared.token_count if last and env.prepared else None,
                    placeholders=placeholders,
                    ner_budget=ner_budget,
                )
                findings += [f.to_finding(message_index=index) for f in result.findings]
                blocking = blocking or result.blocking
                if result.redacted != text:
                    content = content.replace(text, result.redacted)
            if content != msg.content:
                messages[index] = ChatMessage(role=msg.role, content=content)

        common = {
            "findings": findings,
            "policy_version": self.policy.version,
            "policy": name,
            "dropped_documents": [d.id for d in dropped],
        }
        changed = messages != env.grounding.messages
        if blocking is not None:
            safety = Safety(
                verdict="block",
                category=blocking.name,
                refusal=policy.refusal_text(blocking.name),
                **common,
            )
        else:
            safety = Safety(
                verdict="redact" if placeholders.mapping else "allow",
                messages=messages if changed else None,
                prompt=render_plain(messages) if changed else None,
                placeholders=placeholders.mapping,
                restore_placeholders=policy.restore_placeholders and bool(placeholders.mapping),
                **common,
            )
        # Verdicts and check names only: never the text or what matched (DESIGN.md §7).
        structlog.get_logger("safety.checker").info(
            "safety.verdict",
            verdict=safety.verdict,
            category=safety.category,
            findings=sorted({f.check for f in findings}),
            dropped=len(dropped),
            ner_skipped_chars=ner_budget.skipped_chars or None,
        )
        return env.model_copy(update={"safety": safety})

    def _poisoned(self, tenant: str, documents: list[Document], findings: list[Finding]) -> list[Document]:
        suite = self.suite(tenant, "context")
        policy = self._policy_key(tenant)
        known = [self.memo.get(policy, doc.text) for doc in documents]
        unseen = [i for i, found in enumerate(known) if found is None]
        # One batched MiniLM call for every chunk not checked recently, not one call per chunk.
        vectors = suite.embed_many([documents[i].text for i in unseen])
        for i, vector in zip(unseen, vectors, strict=True):
            checked = tuple(suite.scan(documents[i].text, embedding=vector).findings)
            self.memo.put(policy, documents[i].text, checked)
            known[i] = checked
        dropped = []
        for doc, found in zip(documents, known, strict=True):
            if found:
                dropped.append(doc)
                findings += [f.to_finding(document_id=doc.id, dropped=True) for f in found]
        return dropped

    @staticmethod
    def _prepared_embedding(env: Envelope) -> npt.NDArray[np.float32] | None:
        if env.prepared is None or not env.prepared.embedding:
            return None
        return decode_vector(env.prepared.embedding)


def _client_system_texts(env: Envelope, system: str) -> list[str]:
    """The client's own system messages found in the final system message (the template embeds them)."""
    client = env.prepared.messages if env.prepared is not None else env.request.messages if env.request else []
    return [m.content for m in client if m.role == "system" and m.content and m.content in system]


def _without(message: ChatMessage, texts: list[str]) -> ChatMessage:
    content = message.content
    for text in texts:
        content = content.replace(text, "[removed: this retrieved passage contained instructions]")
    return message if content == message.content else ChatMessage(role=message.role, content=content)
