"""Gateway overhead: a non-streaming request through the HTTP gateway vs the same request through the SDK.

Both go to the same embedded stack (Tansu, five services, the gateway as its own process), with
the small model and ``max_tokens=1`` so the pipeline's own time is short and the difference is the
gateway's (HTTP parsing, auth, JSON, its own Kafka client). Requests alternate between the two
paths so machine load hits both alike. The gateway also reports, in ``Server-Timing``, its time
and the pipeline's: their difference is what it adds inside its process.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.report import Section, percentile, table
from shared.client import LlmopsClient
from shared.components.model_store import ModelIntegrityError, ModelMissingError, ensure_local
from shared.components.registry import ModelRegistry
from shared.messaging.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.embedded import EmbeddedStack, free_port
from shared.stack.tansu import TansuBroker

__all__ = ["run"]

MODEL = "gemma-3-270m"
ROUNDS = 60
WARM_UP = 5
PROMPT = "Say hi."
TARGET_MS = 3.0


def _server_timing(header: str) -> dict[str, float]:
    found = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            found[name] = float(dur)
    return found


async def _measure(core: CoreSettings, url: str, key: str) -> tuple[list[float], list[float], list[float]]:
    sdk_ms: list[float] = []
    gateway_ms: list[float] = []
    inside_ms: list[float] = []
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1, "temperature": 0}
    headers = {"Authorization": f"Bearer {key}"}
    async with LlmopsClient(core) as client, httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for i in range(WARM_UP + ROUNDS):
            t0 = time.perf_counter()
            await client.ask(PROMPT, model=MODEL, max_tokens=1, temperature=0)
            t1 = time.perf_counter()
            resp = await http.post("/v1/chat/completions", json=body)
            t2 = time.perf_counter()
            resp.raise_for_status()
            if i < WARM_UP:
                continue
            sdk_ms.append((t1 - t0) * 1000)
            gateway_ms.append((t2 - t1) * 1000)
            timing = _server_timing(resp.headers.get("server-timing", ""))
            inside_ms.append(timing["gateway"] - timing["pipeline"])
    return sdk_ms, gateway_ms, inside_ms


async def run() -> Section:
    """Start the stack with the gateway, alternate SDK and gateway requests, compare p50."""
    title = "Gateway overhead over the SDK (non-streaming)"
    registry = ModelRegistry.load()
    core = CoreSettings(
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"),
        topics=TopicSettings(prefix="bench-gw."),
        default_model=MODEL,
    )
    try:
        ensure_local(registry.get(MODEL), core.models_dir)
    except (ModelMissingError, ModelIntegrityError) as exc:
        return Section(title, f"Skipped: {exc} (run `make install`).")
    key = "sk-bench-" + hashlib.sha256(str(time.time()).encode()).hexdigest()[:16]
    auth = {"keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": "bench"}]}
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
        host, _, port = core.kafka.bootstrap.rpartition(":")
        broker = TansuBroker(host, int(port), log_path=Path(tmp) / "tansu.log")
        await broker.start()
        stack = EmbeddedStack(
            core,
            external=True,
            log_dir=Path(tmp),
            gateway_port=0,
            extra_env={"LLMOPS_GATEWAY_AUTH": json.dumps(auth), "LLMOPS_GATEWAY_REPLICA": "bench"},
        )
        try:
            await stack.start(timeout=300)
            assert stack.gateway_url is not None  # noqa: S101 - started with a gateway port
            sdk, gateway, inside = await _measure(core, stack.gateway_url, key)
        finally:
            stack.stop()
            broker.stop()
    added = percentile(gateway, 50) - percentile(sdk, 50)
    paired = percentile([g - s for g, s in zip(gateway, sdk, strict=True)], 50)
    rows: list[list[object]] = [
        [name, percentile(values, 50), percentile(values, 95), sum(values) / len(values)]
        for name, values in (
            ("SDK (`LlmopsClient.ask`)", sdk),
            ("gateway (`POST /v1/chat/completions`)", gateway),
            ("inside the gateway (Server-Timing: total − pipeline)", inside),
        )
    ]
    verdict = "within" if added <= TARGET_MS else "over"
    body = (
        f"{ROUNDS} requests each way after {WARM_UP} warm-up rounds, alternating; model `{MODEL}`, "
        f"`max_tokens=1`, prompt {PROMPT!r}, embedded Tansu broker, services and gateway as processes.\n\n"
        + table(["path", "p50 ms", "p95 ms", "mean ms"], rows)
        + f"\n\nThe gateway adds **{added:.2f} ms** at p50 ({verdict} the {TARGET_MS:g} ms target); "
        f"the median of the paired differences (each gateway request minus the SDK request before it) is "
        f"{paired:.2f} ms. The pipeline's own time varies by more than the gateway adds, so compare runs "
        "on a quiet machine."
    )
    figures = {
        "sdk_p50_ms": percentile(sdk, 50),
        "gateway_p50_ms": percentile(gateway, 50),
        "added_p50_ms": added,
        "inside_p50_ms": percentile(inside, 50),
        "paired_diff_p50_ms": paired,
    }
    return Section(title, body, figures)
