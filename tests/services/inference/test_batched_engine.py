import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.inference.batched_engine import (
    BatchedLlamaEngine,
    KvCacheTooLargeError,
    available_memory_bytes,
    kv_bytes_per_token,
)
from services.inference.batching import SequenceRequest
from services.inference.engine import ContextOverflowError, Generation, LlamaEngine
from services.inference.params import GenerationParams
from shared.models.registry import ModelRegistry

PROMPTS = [
    "The capital of France is",
    "Water boils at",
    "The largest planet in the solar system is",
    "A recipe for pancakes:",
]


def params(**fields: object) -> GenerationParams:
    base: dict[str, object] = {"max_tokens": 8, "temperature": 0.0, "top_p": 0.95, "top_k": 40, "min_p": 0.05}
    return GenerationParams(**(base | {"repeat_penalty": 1.0} | fields))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def batched(registry: ModelRegistry, models_dir: Path) -> Iterator[BatchedLlamaEngine]:
    entry = registry.get("gemma-3-270m")
    engine = BatchedLlamaEngine(entry, entry.path_in(models_dir), parallel=4, n_ctx=512, n_threads=1, prefill_chunk=32)
    engine.warm_up(tokens=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def single(registry: ModelRegistry, models_dir: Path) -> Iterator[LlamaEngine]:
    entry = registry.get("gemma-3-270m")
    engine = LlamaEngine(entry, entry.path_in(models_dir), n_ctx=512, n_threads=1)
    engine.warm_up(tokens=1)
    yield engine
    engine.close()


def together(engine: BatchedLlamaEngine, jobs: list[tuple[str, GenerationParams]]) -> list[Generation]:
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(engine.generate, [], prompt, p) for prompt, p in jobs]
        return [f.result(timeout=120) for f in futures]


class TestBatchedLlamaEngine:
    def test_a_lone_request_answers_as_the_single_sequence_engine(
        self, batched: BatchedLlamaEngine, single: LlamaEngine
    ) -> None:
        """Greedy, one sequence: the batched decode loop gives the single-sequence engine's text and counts."""
        ours = batched.generate([], PROMPTS[0], params(max_tokens=12))
        theirs = single.generate([], PROMPTS[0], params(max_tokens=12))
        assert (ours.text, ours.tokens_in, ours.tokens_out) == (theirs.text, theirs.tokens_in, theirs.tokens_out)

    def test_sequences_decoded_together_share_the_steps(self, batched: BatchedLlamaEngine) -> None:
        """Four prompts at once: four slots in flight, about one decode step per token of the longest answer.

        Their texts are those of the same four alone, but for near-ties: a batch of several tokens goes through
        llama.cpp's batched matmul, whose sums round differently in the last bits (docs/inference.md).
        """
        jobs = [(p, params()) for p in PROMPTS]
        assert batched.batcher is not None
        steps = batched.batcher.steps
        results = together(batched, jobs)
        assert batched.batcher.max_in_flight == 4
        # Alone, the four would take at least 4 x 8 decode steps; together about one step per token.
        assert batched.batcher.steps - steps <= max(r.tokens_out for r in results) + 2
        assert all(r.tokens_out == 8 or r.finish_reason == "stop" for r in results)

    def test_seeded_sampling_repeats_in_the_same_company(self, batched: BatchedLlamaEngine) -> None:
        """Each sequence samples with its own seed: the same batch twice gives the same texts, different seeds
        differ. (In other company the logits differ in their last bits, so a sampled answer may too.)"""
        batcher = batched.batcher
        assert batcher is not None

        def one_batch(seeds: list[int]) -> list[str]:
            batcher.forget()  # every run reads its prompts whole
            requests = [
                SequenceRequest(batched.tokenize(p), params(temperature=0.9, seed=seed), 10, ())
                for p, seed in zip(PROMPTS, seeds, strict=True)
            ]
            with batcher._wake:  # all four join the same first step
                futures = [batcher.submit(r) for r in requests]
            return [f.result(timeout=60).text for f in futures]

        first = one_batch([7, 7, 7, 7])
        assert one_batch([7, 7, 7, 7]) == first
        assert one_batch([8, 9, 10, 11]) != first

    def test_each_sequence_keeps_its_own_limits(self, batched: BatchedLlamaEngine) -> None:
        """Stop strings, max_tokens and timeouts are per sequence: one ending does not end the others."""
        long_one = params(max_tokens=24)
        jobs = [
            (PROMPTS[3], long_one),
            (PROMPTS[1], params(max_tokens=3)),
            (PROMPTS[0], params(max_tokens=24, stop=(" ",))),
        ]
        results = together(batched, jobs)
        assert results[0].tokens_out == 24 or results[0].finish_reason == "stop"
        assert (results[1].tokens_out, results[1].finish_reason) == (3, "length")
        assert results[2].finish_reason == "stop"
        assert " " not in results[2].text.strip()

    def test_a_deadline_ends_one_sequence_with_partial_text(self, batched: BatchedLlamaEngine) -> None:
        expired = batched.generate([], PROMPTS[0], params(), deadline=time.time() - 1)
        assert (expired.finish_reason, expired.text, expired.tokens_out) == ("timeout", "", 0)
        with ThreadPoolExecutor(2) as pool:
            short = pool.submit(batched.generate, [], PROMPTS[3], params(max_tokens=400), deadline=time.time() + 1.5)
            other = pool.submit(batched.generate, [], PROMPTS[1], params(max_tokens=6))
            timed_out, finished = short.result(timeout=60), other.result(timeout=60)
        assert timed_out.finish_reason == "timeout"
        assert 0 < timed_out.tokens_out < 400
        assert timed_out.text
        assert finished.tokens_out == 6 or finished.finish_reason == "stop"

    def test_cancel_ends_the_sequence(self, batched: BatchedLlamaEngine) -> None:
        cancel = threading.Event()
        cancel.set()
        result = batched.generate([], PROMPTS[0], params(max_tokens=50), cancel=cancel)
        assert result.finish_reason == "cancelled"

    def test_streams_stay_apart(self, batched: BatchedLlamaEngine) -> None:
        """Each sequence's pieces reach its own sink, in order, and join into its text."""
        pieces: dict[int, list[str]] = {0: [], 1: []}
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(batched.generate, [], PROMPTS[i], params(max_tokens=10), on_text=pieces[i].append)
                for i in (0, 1)
            ]
            results = [f.result(timeout=60) for f in futures]
        for i, result in enumerate(results):
            assert "".join(pieces[i]) == result.text
            assert len(pieces[i]) > 1

    def test_a_newcomer_joins_while_another_streams(self, batched: BatchedLlamaEngine) -> None:
        """A request sent mid-generation joins between steps, its prompt read in chunks, and ends first;
        the running sequence keeps producing tokens while the newcomer's prompt is read."""
        arrivals: list[float] = []
        long_prompt = "Here is a long list of fruits: " + ", ".join(["apple", "banana", "cherry", "plum"] * 30) + "."
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(
                batched.generate,
                [],
                PROMPTS[3],
                params(max_tokens=60),
                on_text=lambda _p: arrivals.append(time.perf_counter()),
            )
            while len(arrivals) < 3:
                time.sleep(0.01)
            joined_at = time.perf_counter()
            second = pool.submit(batched.generate, [], long_prompt, params(max_tokens=2))
            newcomer = second.result(timeout=60)
            newcomer_done = time.perf_counter()
            running = first.result(timeout=60)
        assert newcomer.tokens_in > 4 * 32  # several prefill chunks of 32
        assert running.tokens_out == 60 or running.finish_reason == "stop"
        assert newcomer_done < arrivals[-1]
        assert newcomer.time_to_first_token_ms is not None
        first_token_at = joined_at + newcomer.time_to_first_token_ms / 1000
        assert any(joined_at < t < first_token_at for t in arrivals), "the running sequence paused for the prompt"

    def test_a_conversations_next_turn_reuses_its_prefix(self, batched: BatchedLlamaEngine) -> None:
        """The KV cells a slot holds serve the next prompt that starts with the same tokens."""
        turn = "User: My name is Ada and I like tea.\nAssistant:"
        first = batched.generate([], turn, params(max_tokens=4))
        second = batched.generate([], turn + first.text + "\nUser: What do I like?\nAssistant:", params(max_tokens=4))
        assert second.cached_tokens >= first.tokens_in - 1

    def test_forget_drops_the_cached_prefixes(self, batched: BatchedLlamaEngine) -> None:
        assert batched.batcher is not None
        batched.generate([], PROMPTS[0], params(max_tokens=2))
        assert batched.generate([], PROMPTS[0], params(max_tokens=2)).cached_tokens > 0
        batched.batcher.forget()
        assert batched.generate([], PROMPTS[0], params(max_tokens=2)).cached_tokens == 0

    def test_too_long_a_prompt_is_refused(self, batched: BatchedLlamaEngine) -> None:
        with pytest.raises(ContextOverflowError):
            batched.generate([], "word " * 600, params())


class TestKvCacheSize:
    def test_a_cache_that_does_not_fit_is_refused(self, registry: ModelRegistry, models_dir: Path) -> None:
        entry = registry.get("gemma-3-270m")
        engine = BatchedLlamaEngine(
            entry, entry.path_in(models_dir), parallel=8, n_ctx=4096, kv_cache_limit_bytes=2**20
        )
        with pytest.raises(KvCacheTooLargeError, match=r"8 parallel sequences of 4096 tokens needs \d+ MiB"):
            engine.warm_up(tokens=0)
        probe = BatchedLlamaEngine(entry, entry.path_in(models_dir), parallel=8, memory_probe=lambda: 2**20)
        with pytest.raises(KvCacheTooLargeError, match="available memory"):
            probe.warm_up(tokens=0)

    def test_the_size_follows_the_models_shape(self, single: LlamaEngine) -> None:
        """Gemma 3 270M: 18 layers, 1 KV head of 256 for keys and for values, f16."""
        assert kv_bytes_per_token(single.llama) == 18 * 1 * (256 + 256) * 2

    def test_available_memory_reads_meminfo(self, tmp_path: Path) -> None:
        meminfo = tmp_path / "meminfo"
        meminfo.write_text("MemTotal: 100 kB\nMemAvailable: 2048 kB\n")
        assert available_memory_bytes(meminfo) == 2048 * 1024
        assert available_memory_bytes(tmp_path / "missing") is None
