"""Run a suite's cases through a running pipeline with the client SDK, a few at a time, and score them.

Example:
    >>> async with LlmopsClient(core, reply_to=core.topics.shadow_responses) as client:
    ...     results = await SuiteRunner(client, concurrency=2).run(suite, on_result=print)

"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from shared.cache.keys import CACHE_METADATA_KEY, SHADOW_METADATA_KEY
from shared.client import BROKER_ERRORS, LlmopsClient
from shared.eval.expectations import check_all
from shared.eval.results import EvalResult, Outcome
from shared.eval.suite import CaseRun, Suite

__all__ = ["EVAL_METADATA_KEY", "SuiteRunner", "score"]

#: ``request.metadata["eval"]``: the suite and configuration a request was sent for (labels, logs).
EVAL_METADATA_KEY = "eval"


def score(suite: Suite, run: CaseRun, outcome: Outcome) -> EvalResult:
    """The scored record of one case run."""
    checks = check_all(run.case.expect, outcome)
    return EvalResult(
        suite=suite.name,
        configuration=run.configuration.name,
        case_id=run.case.id,
        category=run.case.category,
        paraphrase_of=run.case.paraphrase_of,
        tenant=run.tenant,
        passed=all(c.passed for c in checks),
        checks=checks,
        outcome=outcome,
    )


T = TypeVar("T")


async def bounded_gather(
    jobs: Sequence[Callable[[], Awaitable[T]]], concurrency: int, on_result: Callable[[T], None] | None = None
) -> list[T]:
    """Run ``jobs`` at most ``concurrency`` at a time; results in the jobs' order, ``on_result`` as each completes."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            result = await job()
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(job) for job in jobs)))


class SuiteRunner:
    """Sends each case run as its own conversation, as a shadow request: not cached, not remembered.

    Shadow requests are answered on the shadow reply topic only, so ``client`` must read it.
    """

    def __init__(self, client: LlmopsClient, *, concurrency: int = 2, timeout: float = 180.0) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)
        self.timeout = timeout

    async def run_case(self, suite: Suite, run: CaseRun) -> EvalResult:
        """Ask one case and score its answer; a timeout or an unreachable broker is a failed outcome."""
        label = f"{suite.name}/{run.configuration.name}"
        # Shadow: evaluation answers are neither cached nor written to conversation memory.
        metadata = {CACHE_METADATA_KEY: "off", SHADOW_METADATA_KEY: f"eval:{label}", EVAL_METADATA_KEY: label}
        if run.template:
            metadata["template"] = run.template
        params = dict(run.params)
        # A fresh conversation per case run: answers must not depend on the order cases run in.
        conversation = f"eval-{run.case.id}-{uuid.uuid4().hex[:8]}"
        env = self.client.build(
            run.case.messages,
            conversation_id=conversation,
            model=run.model,
            timeout=self.timeout,
            tenant=run.tenant,
            metadata=metadata,
            **params,
        )
        started = time.perf_counter()
        try:
            fut = await self.client.send(env)
            answer = await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            self.client.forget(env.request_id)
            outcome = Outcome(
                error_code="client_timeout",
                category="client_timeout",
                latency_ms=(time.perf_counter() - started) * 1000,
                request_id=env.request_id,
            )
        except BROKER_ERRORS as exc:
            outcome = Outcome(error_code="broker_error", category=type(exc).__name__, request_id=env.request_id)
        else:
            outcome = Outcome.from_envelope(answer, (time.perf_counter() - started) * 1000)
        return score(suite, run, outcome)

    async def run(self, suite: Suite, *, on_result: Callable[[EvalResult], None] | None = None) -> list[EvalResult]:
        """Every case under every configuration; ``on_result`` sees each record as it completes."""
        return await bounded_gather(
            [functools.partial(self.run_case, suite, run) for run in suite.runs()], self.concurrency, on_result
        )
