"""Continuous batching: several sequences decoded together in one llama.cpp context.

Decoding is bound by memory bandwidth: one decode step reads every weight once, whether it
advances one sequence or eight. ``SequenceBatcher`` keeps up to ``parallel`` sequences in one
context (one KV cache, a sequence id per slot) and runs one decode thread:

- each step puts one token per generating sequence in the batch, then fills the rest of the
  token budget (``n_batch``) with prompt chunks of newcomers (at most ``prefill_chunk`` each),
  so running sequences keep streaming while a long prompt is read;
- a request waiting for a slot joins between two steps; a finished one leaves at once;
- every sequence has its own sampler chain (its own seed), stop scanner, token limit,
  deadline and cancel flag;
- a slot keeps the tokens it last held: the next request whose prompt shares a prefix with
  any slot's tokens (a conversation's next turn) starts from there instead of recomputing it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import llama_cpp
from llama_cpp import Llama
from llama_cpp import _internals as internals

from services.inference.engine import FinishReason, Generation, TextSink, _discard, _verdict
from services.inference.params import GenerationParams
from services.inference.prompt_cache import common_prefix
from services.inference.text_stream import StopScanner

__all__ = ["BatchDecodeError", "SequenceBatcher", "SequenceRequest"]

#: Tokens the repeat penalty looks back over (llama-cpp-python's ``last_n_tokens_size`` default).
PENALTY_LAST_N = 64


class BatchDecodeError(RuntimeError):
    """llama.cpp refused a decode step (no KV room, or an internal error); the sequences in it failed."""


def _expired(request: SequenceRequest) -> FinishReason | None:
    """Why a request still waiting for a slot ends now, or None."""
    return _verdict(stopped=False, left=1, deadline=request.deadline, cancel=request.cancel)


def _ms_since(request: SequenceRequest) -> float:
    return round((time.perf_counter() - request.submitted) * 1000, 2)


@dataclass
class SequenceRequest:
    """One generation asked of the batcher; ``future`` gets its ``Generation``."""

    tokens: list[int]
    params: GenerationParams
    max_tokens: int
    stops: tuple[str, ...]
    on_text: TextSink = _discard
    deadline: float | None = None
    cancel: threading.Event | None = None
    future: concurrent.futures.Future[Generation] = field(default_factory=concurrent.futures.Future)
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class _Slot:
    """A sequence id of the context and what it holds."""

    seq_id: int
    history: list[int] = field(default_factory=list)  # tokens in the KV cache, positions 0..len-1
    request: SequenceRequest | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not evaluated yet
    sampler: internals.LlamaSampler | None = None
    scanner: StopScanner | None = None
    next_token: int | None = None  # sampled, to be fed in the next step
    output_index: int = -1  # where this slot's logits are in the step's batch; -1 when none
    produced: int = 0
    cached: int = 0
    ttft_ms: float | None = None

    @property
    def busy(self) -> bool:
        return self.request is not None


class SequenceBatcher:
    """Decodes up to ``parallel`` sequences together in one context; ``submit`` is thread-safe.

    Example:
        >>> batcher = SequenceBatcher(llama, parallel=4, n_ctx_per_seq=2048)
        >>> batcher.start()
        >>> request = SequenceRequest(tokens, params, max_tokens=64, stops=())
        >>> batcher.submit(request).result().text
        'Paris.'

    """

    def __init__(
        self,
        llama: Llama,
        *,
        parallel: int,
        n_ctx_per_seq: int,
        n_batch: int = 512,
        n_ubatch: int = 512,
        prefill_chunk: int = 256,
        n_threads: int | None = None,
        flash_attn: bool = False,
    ) -> None:
        if parallel < 1:
            msg = "parallel must be at least 1"
            raise ValueError(msg)
        self.llama = llama
        self.parallel = parallel
        self.n_ctx_per_seq = n_ctx_per_seq
        self.n_batch = max(n_batch, parallel)
        self.prefill_chunk = max(1, prefill_chunk)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_per_seq * parallel
        params.n_batch = self.n_batch
        params.n_ubatch = min(n_ubatch, self.n_batch)
        params.n_seq_max = parallel
        params.kv_unified = True  # one pool of cells: a slot can share another's prefix (seq_cp)
        threads = n_threads or llama.context_params.n_threads
        params.n_threads = threads
        params.n_threads_batch = threads
        if flash_attn:
            params.flash_attn_type = llama.context_params.flash_attn_type
        self._ctx = internals.LlamaContext(model=llama._model, params=params, verbose=False)  # noqa: SLF001
        self._batch = internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self._vocab = llama._model.vocab  # noqa: SLF001 - the handle llama.cpp's EOG check needs
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.slots = [_Slot(seq_id=i) for i in range(parallel)]
        self._queue: deque[SequenceRequest] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._forget: list[threading.Event] = []
        self._thread: threading.Thread | None = None
        self.steps = 0
        self.max_in_flight = 0

    # -- the caller's side ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the decode thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmops-batcher", daemon=True)
            self._thread.start()

    def submit(self, request: SequenceRequest) -> concurrent.futures.Future[Generation]:
        """Queue a request; it joins the batch at the next step with a free slot."""
        if len(request.tokens) >= self.n_ctx_per_seq:
            msg = f"the prompt has {len(request.tokens)} tokens; a sequence's context holds {self.n_ctx_per_seq}"
            request.future.set_exception(ValueError(msg))
            return request.future
        with self._wake:
            if self._closed:
                request.future.set_exception(RuntimeError("the batcher is closed"))
                return request.future
            self._queue.append(request)
            self._wake.notify()
        return request.future

    def forget(self) -> None:
        """Drop every token the idle slots hold (the next prompts are read whole); waits for the decode thread."""
        done = threading.Event()
        with self._wake:
            self._forget.append(done)
            self._wake.notify()
        if self._thread is None:
            self._clear_idle()
        done.wait()

    def _clear_idle(self) -> None:
        for slot in self.slots:
            if not slot.busy:
                llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot.seq_id, -1, -1)
                slot.history = []
        while self._forget:
            self._forget.pop().set()

    @property
    def in_flight(self) -> int:
        """Sequences in slots now."""
        return sum(slot.busy for slot in self.slots)

    def close(self) -> None:
        """Stop the decode thread (queued and running requests end as ``cancelled``) and free the context."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        while self._forget:
            self._forget.pop().set()
        for request in self._queue:
            request.future.set_exception(RuntimeError("the batcher closed before this request started"))
        self._queue.clear()
        for slot in self.slots:
            if slot.sampler is not None:
                slot.sampler.close()
                slot.sampler = None
        self._batch.close()
        self._ctx.close()

    # -- the decode thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._queue and not self._forget and not any(s.busy for s in self.slots):
                    self._wake.wait()
                if self._closed:
                    break
                if self._forget:
                    self._clear_idle()
                self._admit()
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - a failed step fails its sequences, never the thread
                for slot in self.slots:
                    if slot.busy:
                        self._fail(slot, exc)
        for slot in self.slots:
            if slot.busy:
                self._finish(slot, "cancelled")

    def _admit(self) -> None:
        """Move queued requests into free slots (called with the lock held)."""
        for request in [r for r in self._queue if _expired(r) is not None]:
            self._queue.remove(request)
            reason = _expired(request)
            assert reason is not None  # noqa: S101
            request.future.set_result(Generation("", len(request.tokens), 0, reason, None, _ms_since(request)))
        while self._queue:
            free = [slot for slot in self.slots if not slot.busy]
            if not free:
                break
            request = self._queue.popleft()
            self._place(request, free)
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _place(self, request: SequenceRequest, free: list[_Slot]) -> None:
        """Start ``request`` in the free slot that reuses most of its prompt (any slot's prefix can be copied)."""
        tokens = request.tokens
        reuse = {s.seq_id: min(common_prefix(s.history, tokens), len(tokens) - 1) for s in self.slots}
        slot = max(free, key=lambda s: reuse[s.seq_id])
        donor = max(self.slots, key=lambda s: reuse[s.seq_id])
        keep, shared = reuse[slot.seq_id], reuse[donor.seq_id]
        memory = self._ctx.memory
        if shared > keep and donor is not slot:
            llama_cpp.llama_memory_seq_rm(memory, slot.seq_id, -1, -1)
            llama_cpp.llama_memory_seq_cp(memory, donor.seq_id, slot.seq_id, 0, shared)
            keep = shared
        # A sliding-window cache cannot always cut a sequence in the middle: then the prompt is read whole.
        if not llama_cpp.llama_memory_seq_rm(memory, slot.seq_id, keep, -1):
            llama_cpp.llama_memory_seq_rm(memory, slot.seq_id, -1, -1)
            keep = 0
        slot.history = list(tokens[:keep])
        slot.pending = list(tokens[keep:])
        slot.request = request
        slot.cached = keep
        slot.produced = 0
        slot.ttft_ms = None
        slot.next_token = None
        slot.scanner = StopScanner(request.stops)
        if slot.sampler is not None:
            slot.sampler.close()
        slot.sampler = self._sampler(request.params)

    def _sampler(self, params: GenerationParams) -> internals.LlamaSampler:
        """The chain ``Llama.generate`` builds, with this request's seed."""
        sampler = internals.LlamaSampler()
        sampler.add_penalties(
            n_vocab=self._n_vocab,
            penalty_last_n=PENALTY_LAST_N,
            penalty_repeat=params.repeat_penalty,
            penalty_freq=0.0,
            penalty_present=0.0,
        )
        if params.grammar is not None:
            sampler.add_grammar(self.llama._model, params.grammar)  # noqa: SLF001
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        if params.temperature <= 0.0:
            sampler.add_greedy()
        else:
            sampler.add_top_k(params.top_k)
            sampler.add_typical(1.0, 1)
            sampler.add_top_p(params.top_p, 1)
            sampler.add_min_p(params.min_p, 1)
            sampler.add_temp(params.temperature)
            sampler.add_dist(seed)
        return sampler

    def _step(self) -> None:
        """One decode: a token for each generating slot, then prompt chunks; sample where logits came out."""
        n = self._fill()
        if n:
            batch = self._batch.batch
            batch.n_tokens = n
            code = llama_cpp.llama_decode(self._ctx.ctx, batch)
            if code != 0:
                msg = f"llama_decode returned {code} for a batch of {n} tokens"
                raise BatchDecodeError(msg)
            self.steps += 1
        now = time.perf_counter()
        for slot in self.slots:
            if slot.busy and slot.output_index >= 0:
                self._sample(slot, now)
            elif slot.busy:
                self._check_waiting(slot)

    def _fill(self) -> int:
        """Put this step's tokens in the batch; returns how many."""
        n = 0
        for slot in self.slots:
            slot.output_index = -1
            if slot.busy and slot.next_token is not None:
                n = self._add(n, slot, [slot.next_token], logits_last=True)
                slot.next_token = None
        for slot in self.slots:
            budget = self.n_batch - n
            if budget <= 0:
                break
            if slot.busy and slot.pending:
                chunk = slot.pending[: min(budget, self.prefill_chunk)]
                slot.pending = slot.pending[len(chunk) :]
                n = self._add(n, slot, chunk, logits_last=not slot.pending)
        return n

    def _add(self, n: int, slot: _Slot, tokens: Sequence[int], *, logits_last: bool) -> int:
        batch = self._batch.batch
        pos = len(slot.history)
        for i, token in enumerate(tokens):
            batch.token[n + i] = token
            batch.pos[n + i] = pos + i
            batch.n_seq_id[n + i] = 1
            batch.seq_id[n + i][0] = slot.seq_id
            batch.logits[n + i] = False
        n += len(tokens)
        if logits_last:
            batch.logits[n - 1] = True
            slot.output_index = n - 1
        slot.history.extend(tokens)
        return n

    def _sample(self, slot: _Slot, now: float) -> None:
        request = slot.request
        assert request is not None  # noqa: S101 - only busy slots are sampled
        assert slot.sampler is not None  # noqa: S101
        assert slot.scanner is not None  # noqa: S101
        token = llama_cpp.llama_sampler_sample(slot.sampler.sampler, self._ctx.ctx, slot.output_index)
        if slot.ttft_ms is None:
            slot.ttft_ms = (now - request.submitted) * 1000
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, "stop")
            return
        slot.produced += 1
        piece, stopped = slot.scanner.feed(self.llama.detokenize([token]))
        if piece:
            request.on_text(piece)
        verdict = _verdict(
            stopped=stopped,
            left=request.max_tokens - slot.produced,
            deadline=request.deadline,
            cancel=request.cancel,
        )
        if verdict is not None:
            self._finish(slot, verdict)
            return
        slot.next_token = token

    def _check_waiting(self, slot: _Slot) -> None:
        """A sequence still reading its prompt can time out or be cancelled too."""
        assert slot.request is not None  # noqa: S101
        verdict = _expired(slot.request)
        if verdict is not None:
            self._finish(slot, verdict)

    def _finish(self, slot: _Slot, reason: FinishReason) -> None:
        request = slot.request
        assert request is not None  # noqa: S101 - only busy slots finish
        assert slot.scanner is not None  # noqa: S101
        rest = slot.scanner.finish()
        if rest:
            request.on_text(rest)
        slot.pending = []  # a prompt's unread rest never reached the cache: ``history`` is what it holds
        slot.request = None
        slot.next_token = None
        generation = Generation(
            text=slot.scanner.text,
            tokens_in=len(request.tokens),
            tokens_out=slot.produced,
            finish_reason=reason,
            time_to_first_token_ms=round(slot.ttft_ms, 2) if slot.ttft_ms is not None else None,
            generation_ms=_ms_since(request),
            cached_tokens=slot.cached,
        )
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            request.future.set_result(generation)

    def _fail(self, slot: _Slot, exc: Exception) -> None:
        request = slot.request
        assert request is not None  # noqa: S101
        llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot.seq_id, 0, -1)
        slot.history = []
        slot.pending = []
        slot.request = None
        slot.next_token = None
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            request.future.set_exception(exc)
