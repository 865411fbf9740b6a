"""Issue 24: continuous batching, the inference engine against llama.cpp's own server, and the whole pipeline.

1. **Engine vs peer.** The same model, the same 128-token prompts (token ids, so both read the very same
   tokens), 64-token greedy answers, at 1, 2, 4 and 8 concurrent clients (each sends two requests in turn):
   - the peer: ``llama-server -np 8`` (continuous batching), built for this benchmark only from the llama.cpp
     sources llama-cpp-python vendors (``scripts/build_llama_peer.sh``), streaming ``/completion`` calls with
     ``ignore_eos``;
   - ours: ``BatchedLlamaEngine`` with ``parallel=8`` (the inference service's engine), its decode thread fed
     by one thread per client.
   Aggregate tokens/s (every answer token over the wall time), time to first token and request latency.
2. **A lone request** against bare llama-cpp-python (``Llama.create_completion``, same tokens and threads):
   tokens/s over the whole call, prompt included, median of 3.
3. **The whole pipeline** (five services as processes, Apache Kafka): 8 clients, three requests each, 64-token
   answers, with ``LLMOPS_INFERENCE_PARALLEL`` 1 (one generation at a time, as before) and 8.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from llama_cpp import Llama

from benchmarks.pipeline import LONG_PROMPTS, embedded_stack
from benchmarks.report import Section, percentile, table
from services.inference.batched_engine import BatchedLlamaEngine
from services.inference.batching import SequenceRequest
from services.inference.params import GenerationParams
from shared.client import LlmopsClient
from shared.models.model_store import ModelIntegrityError, ModelMissingError, ensure_local
from shared.models.registry import ModelRegistry
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import free_port
from shared.stack.processes import http_status, stop_process

__all__ = ["parse_batched_bench", "run"]

MODEL = "qwen2.5-coder-0.5b-instruct"
CONCURRENCY = (1, 2, 4, 8)
SLOTS = 8
PROMPT_TOKENS = 128
ANSWER_TOKENS = 64
PER_CLIENT = 2
N_CTX = 512
THREADS = os.cpu_count() or 2
PIPELINE_CLIENTS = 8
PIPELINE_PER_CLIENT = 3
_ROOT = Path(__file__).resolve().parent.parent
GREEDY = GenerationParams(max_tokens=ANSWER_TOKENS, temperature=0.0, top_p=1.0, top_k=1, min_p=0.0, repeat_penalty=1.0)


@dataclass
class Load:
    """What one side served at one concurrency."""

    tokens: int = 0
    wall_s: float = 0.0
    ttft_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else 0.0

    def row(self, side: str, clients: int) -> list[object]:
        return [
            side,
            clients,
            self.tokens_per_s,
            percentile(self.ttft_ms, 50),
            percentile(self.ttft_ms, 99),
            percentile(self.latency_ms, 50),
            percentile(self.latency_ms, 99),
        ]


def _prompts(llama: Llama, count: int) -> list[list[int]]:
    """``count`` different prompts of exactly ``PROMPT_TOKENS`` tokens that a model continues for long."""
    prompts = []
    for i in range(count):
        text = f"Request {i}. Continue the list of numbers: " + ", ".join(str(n) for n in range(i * 7 + 1, 400))
        tokens = llama.tokenize(text.encode(), add_bos=True, special=False)[:PROMPT_TOKENS]
        prompts.append(tokens)
    return prompts


def _clients(clients: int, job: object) -> float:
    """Run ``job(client_index, request_index)`` from ``clients`` threads, PER_CLIENT times each; the wall time."""

    def worker(c: int) -> None:
        for r in range(PER_CLIENT):
            job(c, r)  # type: ignore[operator]

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _ours(engine: BatchedLlamaEngine, prompts: list[list[int]], clients: int) -> Load:
    load = Load()
    lock = threading.Lock()
    assert engine.batcher is not None  # noqa: S101

    def job(c: int, r: int) -> None:
        tokens = prompts[(c * PER_CLIENT + r) % len(prompts)]
        request = SequenceRequest(tokens=list(tokens), params=GREEDY, max_tokens=ANSWER_TOKENS, stops=())
        result = engine.batcher.submit(request).result()  # type: ignore[union-attr]
        with lock:
            load.tokens += result.tokens_out
            load.ttft_ms.append(result.time_to_first_token_ms or 0.0)
            load.latency_ms.append(result.generation_ms)

    load.wall_s = _clients(clients, job)
    return load


def _peer_request(url: str, tokens: list[int]) -> tuple[int, float, float]:
    """One streamed completion from llama-server: (tokens, time to first token ms, latency ms)."""
    body = {
        "prompt": tokens,
        "n_predict": ANSWER_TOKENS,
        "ignore_eos": True,
        "temperature": 0.0,
        "top_k": 1,
        "stream": True,
        "cache_prompt": False,
    }
    t0 = time.perf_counter()
    ttft = None
    count = 0
    with httpx.stream("POST", f"{url}/completion", json=body, timeout=600) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("stop"):
                count = int(event.get("tokens_predicted", count))
                break
            if ttft is None:
                ttft = (time.perf_counter() - t0) * 1000
            count += 1
    return count, ttft or 0.0, (time.perf_counter() - t0) * 1000


def _peer(url: str, prompts: list[list[int]], clients: int) -> Load:
    load = Load()
    lock = threading.Lock()

    def job(c: int, r: int) -> None:
        count, ttft, latency = _peer_request(url, prompts[(c * PER_CLIENT + r) % len(prompts)])
        with lock:
            load.tokens += count
            load.ttft_ms.append(ttft)
            load.latency_ms.append(latency)

    load.wall_s = _clients(clients, job)
    return load


def _build_peer() -> Path | None:
    done = subprocess.run(  # noqa: S603 - our own script
        [str(_ROOT / "scripts" / "build_llama_peer.sh"), sys.executable],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return Path(done.stdout.strip().splitlines()[-1])


async def _start_peer(binary: Path, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [
        str(binary),
        "-m", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "-c", str(N_CTX * SLOTS),
        "-np", str(SLOTS),
        "-t", str(THREADS),
        "-tb", str(THREADS),
        "-b", "512",
        "-ub", "512",
        "--no-webui",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603, ASYNC220
    end = time.monotonic() + 120
    while await http_status("127.0.0.1", port, "/health") != 200:  # noqa: PLR2004
        if proc.poll() is not None or time.monotonic() > end:
            stop_process(proc)
            msg = "llama-server did not start"
            raise RuntimeError(msg)
        await asyncio.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}"


def _batched_bench(binary: Path, model: Path) -> list[list[object]]:
    """llama.cpp's ``llama-batched-bench``: what the hardware gives at each batch size, no server in the way."""
    argv = [
        str(binary),
        "-m", str(model),
        "-c", str(N_CTX * SLOTS),
        "-b", "512",
        "-ub", "512",
        "-npp", str(PROMPT_TOKENS),
        "-ntg", str(ANSWER_TOKENS),
        "-npl", ",".join(str(c) for c in CONCURRENCY),
        "-t", str(THREADS),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)  # noqa: S603
    return parse_batched_bench(done.stdout)


def parse_batched_bench(output: str) -> list[list[object]]:
    """Rows of (sequences, prompt tokens/s, decode tokens/s, answer tokens/s over the whole time) from its table."""
    rows: list[list[object]] = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[0].isdigit():  # noqa: PLR2004 - PP TG B N_KV T_PP S_PP T_TG S_TG T S
            batch, t_total = int(cells[2]), float(cells[8])
            rows.append([batch, float(cells[5]), float(cells[7]), batch * ANSWER_TOKENS / t_total])
    return rows


def _bare_lone(path: Path, prompt: list[int]) -> float:
    llama = Llama(str(path), n_ctx=N_CTX, n_threads=THREADS, n_batch=512, verbose=False)
    try:
        rates = []
        for _ in range(3):
            llama.reset()
            t0 = time.perf_counter()
            out = llama.create_completion(prompt, max_tokens=ANSWER_TOKENS, temperature=0.0, top_k=1)
            generated = int(out["usage"]["completion_tokens"])
            rates.append(generated / (time.perf_counter() - t0))
        return float(statistics.median(rates))
    finally:
        llama.close()


def _ours_lone(engine: BatchedLlamaEngine, prompt: list[int]) -> float:
    assert engine.batcher is not None  # noqa: S101
    rates = []
    for i in range(3):
        # A different first token each round, so no round reuses the previous one's cached prompt.
        tokens = [prompt[0], 1000 + i, *prompt[2:]]
        t0 = time.perf_counter()
        result = engine.batcher.submit(SequenceRequest(tokens, GREEDY, ANSWER_TOKENS, ())).result()
        rates.append(result.tokens_out / (time.perf_counter() - t0))
    return statistics.median(rates)


async def _pipeline(parallel: int) -> tuple[float, list[float], int]:
    """Requests/s, latencies and errors of PIPELINE_CLIENTS clients against the whole pipeline."""
    stack = embedded_stack(
        MODEL, broker="kafka", LLMOPS_INFERENCE_PARALLEL=str(parallel), LLMOPS_INFERENCE_N_CTX="1024"
    )
    await stack.start(timeout=300)
    latencies: list[float] = []
    errors = 0
    try:
        async with LlmopsClient(stack.core) as client:
            await client.ask("Say hi.", max_tokens=4, raise_on_error=False)

            async def one_client(c: int) -> None:
                nonlocal errors
                for r in range(PIPELINE_PER_CLIENT):
                    prompt = LONG_PROMPTS[(c * PIPELINE_PER_CLIENT + r) % len(LONG_PROMPTS)]
                    t0 = time.perf_counter()
                    answer = await client.ask(
                        prompt, max_tokens=ANSWER_TOKENS, temperature=0.0, raise_on_error=False, timeout=900
                    )
                    latencies.append((time.perf_counter() - t0) * 1000)
                    errors += answer.error is not None

            t0 = time.perf_counter()
            await asyncio.gather(*(one_client(c) for c in range(PIPELINE_CLIENTS)))
            wall = time.perf_counter() - t0
    finally:
        await asyncio.to_thread(stack.stop)
    return (len(latencies) - errors) / wall, latencies, errors


def _ceiling(hardware: list[list[object]]) -> str:
    """What batching can give on this machine at most, from llama-batched-bench's rows."""
    rows = {int(str(row[0])): row for row in hardware}
    if 1 not in rows or SLOTS not in rows:
        return "llama-batched-bench gave no figures."
    decode = float(str(rows[SLOTS][2])) / float(str(rows[1][2]))
    whole = float(str(rows[SLOTS][3])) / float(str(rows[1][3]))
    return (
        f"The ceiling on this machine (llama-batched-bench above): {SLOTS} sequences decoded together give "
        f"{decode:.2f}x the decode tokens/s of one, and {whole:.2f}x the answer tokens/s once their "
        f"{PROMPT_TOKENS}-token prompts are read too. On a CPU this small, decoding is bound by arithmetic more "
        "than by memory, so several sequences per step gain far less than on a GPU."
    )


async def run() -> Section:
    """Peer and engine at each concurrency, the lone request, then the pipeline with parallel 1 and 8."""
    title = "Continuous batching: the inference engine vs llama.cpp's server, and the pipeline (CPU)"
    registry = ModelRegistry.load()
    try:
        path = ensure_local(registry.get(MODEL), CoreSettings().models_dir)
    except (ModelMissingError, ModelIntegrityError) as exc:
        return Section(title, f"Skipped: {exc} (run `make install`).")
    binary_dir = await asyncio.to_thread(_build_peer)
    if binary_dir is None:
        return Section(title, "Skipped: llama-server could not be built (scripts/build_llama_peer.sh needs cmake).")

    engine = BatchedLlamaEngine(registry.get(MODEL), path, parallel=SLOTS, n_ctx=N_CTX, n_threads=THREADS)
    await asyncio.to_thread(engine.warm_up, 1)
    assert engine._llama is not None  # noqa: S101, SLF001
    prompts = _prompts(engine._llama, SLOTS * PER_CLIENT * 2)  # noqa: SLF001
    rows: list[list[object]] = []
    figures: dict[str, float] = {}
    peer, url = await _start_peer(binary_dir / "llama-server", path)
    try:
        for clients in CONCURRENCY:
            # Fresh prompts for each run (offset by the concurrency), alternating sides.
            batch = prompts[clients : clients + SLOTS * PER_CLIENT]
            theirs = await asyncio.to_thread(_peer, url, batch, clients)
            ours = await asyncio.to_thread(_ours, engine, batch[::-1], clients)
            rows += [theirs.row("llama-server -np 8", clients), ours.row("BatchedLlamaEngine (parallel 8)", clients)]
            figures[f"peer_c{clients}_tok_s"] = theirs.tokens_per_s
            figures[f"ours_c{clients}_tok_s"] = ours.tokens_per_s
            figures[f"ratio_c{clients}"] = ours.tokens_per_s / theirs.tokens_per_s if theirs.tokens_per_s else 0.0
    finally:
        stop_process(peer)
    hardware = await asyncio.to_thread(_batched_bench, binary_dir / "llama-batched-bench", path)
    for row in hardware:
        figures[f"batched_bench_b{row[0]}_tg_tok_s"] = float(row[2])  # type: ignore[arg-type]
    lone_ours = await asyncio.to_thread(_ours_lone, engine, prompts[0])
    await asyncio.to_thread(engine.close)
    lone_bare = await asyncio.to_thread(_bare_lone, path, prompts[0])
    figures |= {"lone_ours_tok_s": lone_ours, "lone_bare_tok_s": lone_bare, "lone_ratio": lone_ours / lone_bare}

    pipeline_rows: list[list[object]] = []
    for parallel in (1, SLOTS):
        rps, latencies, errors = await _pipeline(parallel)
        figures[f"pipeline_parallel{parallel}_rps"] = rps
        pipeline_rows.append(
            [parallel, rps, percentile(latencies, 50), percentile(latencies, 99), len(latencies), errors]
        )
    figures["pipeline_speedup"] = figures[f"pipeline_parallel{SLOTS}_rps"] / figures["pipeline_parallel1_rps"]

    header = ["side", "clients", "tokens/s (all)", "TTFT p50 ms", "TTFT p99 ms", "latency p50 ms", "latency p99 ms"]
    body = "\n\n".join(
        [
            (
                f"Model `{MODEL}`, {THREADS} threads, {PROMPT_TOKENS}-token prompts (token ids, a different one "
                f"per request), {ANSWER_TOKENS}-token greedy answers, {PER_CLIENT} requests per client in turn; "
                f"{SLOTS} slots of {N_CTX} tokens on both sides. The peer is llama.cpp's `llama-server`, built "
                "from the sources llama-cpp-python vendors (`scripts/build_llama_peer.sh`), streaming "
                "`/completion` with `ignore_eos`; ours is `BatchedLlamaEngine`, the engine the inference "
                "service runs when `LLMOPS_INFERENCE_PARALLEL` > 1."
            ),
            table(header, rows),
            (
                "What the hardware gives at each batch size, from llama.cpp's own `llama-batched-bench` (the same "
                "build, prompts and answers; all sequences start together; the last column counts answer tokens "
                "over the whole time, as the rows above do):"
            ),
            table(
                ["sequences", "prompt tokens/s", "decode tokens/s", "answer tokens/s over the whole time"],
                hardware,
            ),
            table(
                ["lone request", "tokens/s (prompt included)"],
                [
                    ["bare llama-cpp-python (`create_completion`)", lone_bare],
                    ["BatchedLlamaEngine", lone_ours],
                ],
            ),
            (
                f"Whole pipeline (Apache Kafka, five services as processes, `{MODEL}`): {PIPELINE_CLIENTS} "
                f"clients, {PIPELINE_PER_CLIENT} requests each, {ANSWER_TOKENS}-token answers."
            ),
            table(
                ["LLMOPS_INFERENCE_PARALLEL", "requests/s", "latency p50 ms", "latency p99 ms", "requests", "errors"],
                pipeline_rows,
            ),
            (
                "Targets: ours at 4 and 8 clients at least 0.9x the peer's tokens/s "
                f"(measured {figures['ratio_c4']:.2f}x and {figures['ratio_c8']:.2f}x); a lone request at least "
                f"0.95x bare llama-cpp-python ({figures['lone_ratio']:.2f}x); the pipeline's requests/s with "
                f"{PIPELINE_CLIENTS} clients at least 2x parallel 1's ({figures['pipeline_speedup']:.2f}x)."
            ),
            _ceiling(hardware),
        ]
    )
    return Section(title, body, figures)
