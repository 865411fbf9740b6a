"""Gateway overhead: a non-streaming request through the HTTP gateway vs the same request through the SDK.

Both go to the same embedded stack (Tansu, five services, the gateway as its own process), with
the small model and ``max_tokens=1`` so the pipeline's own time is short and the difference is the
gateway's (HTTP parsing, auth, JSON, its own Kafka client). Requests alternate between the two
paths so machine load hits both alike. The gateway also reports, in ``Server-Timing``, its time
and the pipeline's: their difference is what it adds inside its process.

Two HTTP clients are measured: httpx (a full-featured Python client, about a millisecond of
its own per request) and a minimal HTTP/1.1 keep-alive client on a raw asyncio connection,
which is what the gateway costs a lean client; "the gateway adds" is that client's p50 minus
the SDK's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx

from benchmarks.report import Section, percentile, table
from shared.client import LlmopsClient
from shared.models.model_store import ModelIntegrityError, ModelMissingError, ensure_local
from shared.models.registry import ModelRegistry
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
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


class RawHttpClient:
    """A minimal HTTP/1.1 keep-alive client: one connection, ``Content-Length`` bodies only."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        host_port = url.split("://", 1)[-1].rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one POST and read its whole response: (status, lower-case headers, body)."""
        if self._reader is None or self._writer is None:
            msg = "use the client inside `async with`"
            raise RuntimeError(msg)
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{self.headers}\r\n".encode()
            + body
        )
        head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        return status, headers, await self._reader.readexactly(int(headers.get("content-length", "0")))


async def _measure(core: CoreSettings, url: str, key: str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"sdk": [], "raw": [], "httpx": [], "inside": []}
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1, "temperature": 0}
    payload = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        LlmopsClient(core) as client,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http,
        RawHttpClient(url, headers) as raw,
    ):
        for i in range(WARM_UP + ROUNDS):
            t0 = time.perf_counter()
            await client.ask(PROMPT, model=MODEL, max_tokens=1, temperature=0)
            t1 = time.perf_counter()
            status, raw_headers, _ = await raw.post("/v1/chat/completions", payload)
            t2 = time.perf_counter()
            resp = await http.post("/v1/chat/completions", json=body)
            t3 = time.perf_counter()
            resp.raise_for_status()
            if status != 200:  # noqa: PLR2004
                msg = f"gateway answered {status}"
                raise RuntimeError(msg)
            if i < WARM_UP:
                continue
            found["sdk"].append((t1 - t0) * 1000)
            found["raw"].append((t2 - t1) * 1000)
            found["httpx"].append((t3 - t2) * 1000)
            timing = _server_timing(raw_headers.get("server-timing", ""))
            found["inside"].append(timing["gateway"] - timing["pipeline"])
    return found


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
            found = await _measure(core, stack.gateway_url, key)
        finally:
            stack.stop()
            broker.stop()
    sdk, raw, via_httpx = found["sdk"], found["raw"], found["httpx"]
    added = percentile(raw, 50) - percentile(sdk, 50)
    added_httpx = percentile(via_httpx, 50) - percentile(sdk, 50)
    paired = percentile([g - s for g, s in zip(raw, sdk, strict=True)], 50)
    rows: list[list[object]] = [
        [name, percentile(values, 50), percentile(values, 95), sum(values) / len(values)]
        for name, values in (
            ("SDK (`LlmopsClient.ask`)", sdk),
            ("gateway, minimal keep-alive HTTP/1.1 client", raw),
            ("gateway, httpx client", via_httpx),
            ("inside the gateway (Server-Timing: total − pipeline)", found["inside"]),
        )
    ]
    verdict = "within" if added <= TARGET_MS else "over"
    body = (
        f"{ROUNDS} requests each way after {WARM_UP} warm-up rounds, interleaved (SDK, minimal client, httpx); "
        f"model `{MODEL}`, `max_tokens=1`, prompt {PROMPT!r}, embedded Tansu broker, services and gateway as "
        "processes.\n\n"
        + table(["path", "p50 ms", "p95 ms", "mean ms"], rows)
        + f"\n\nThe gateway adds **{added:.2f} ms** at p50 for a minimal client ({verdict} the {TARGET_MS:g} ms "
        f"target; median of the paired differences {paired:.2f} ms) and {added_httpx:.2f} ms through httpx, "
        "whose own request handling is the difference. The pipeline's own time varies by more than the "
        "gateway adds, so compare runs on a quiet machine."
    )
    figures = {
        "sdk_p50_ms": percentile(sdk, 50),
        "gateway_p50_ms": percentile(raw, 50),
        "gateway_httpx_p50_ms": percentile(via_httpx, 50),
        "added_p50_ms": added,
        "added_httpx_p50_ms": added_httpx,
        "inside_p50_ms": percentile(found["inside"], 50),
        "paired_diff_p50_ms": paired,
    }
    return Section(title, body, figures)
