"""Sampling parameters: the request's, the registry model's defaults, checked before generating."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TypeVar

from llama_cpp import LlamaGrammar

from shared.contracts.envelope import SamplingParams
from shared.models.registry import ModelEntry

__all__ = ["GenerationParams", "InvalidParamsError", "resolve_params"]

MAX_STOPS = 16
MAX_STOP_CHARS = 256
_SEED_LIMIT = 2**32
# llama.cpp's own defaults (``Llama.create_completion``), so a bare call and the service sample alike.
_TOP_K = 40
_MIN_P = 0.05
_REPEAT_PENALTY = 1.0
T = TypeVar("T")


class InvalidParamsError(ValueError):
    """The request's sampling parameters cannot be used with this model."""


@dataclass(frozen=True)
class GenerationParams:
    """Everything one generation samples with, defaults resolved."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    stop: tuple[str, ...] = ()
    seed: int | None = None
    grammar: LlamaGrammar | None = None


def seed_for(request_id: str) -> int:
    """A sampling seed derived from the request id: a redelivered request samples the same answer."""
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:4], "big")


def resolve_params(
    params: SamplingParams,
    entry: ModelEntry,
    *,
    n_ctx: int,
    extra_stops: tuple[str, ...] = (),
    request_id: str | None = None,
) -> GenerationParams:
    """Merge the request's parameters with the model's defaults; ``InvalidParamsError`` lists every problem.

    Example:
        >>> resolve_params(SamplingParams(top_k=5), entry, n_ctx=2048).top_k
        5

    """
    problems: list[str] = []
    if params.max_tokens >= n_ctx:
        problems.append(f"max_tokens={params.max_tokens} does not fit the context of {n_ctx} tokens")
    if len(params.stop) > MAX_STOPS:
        problems.append(f"{len(params.stop)} stop sequences; at most {MAX_STOPS}")
    if any(not s for s in params.stop):
        problems.append("stop sequences must not be empty")
    if any(len(s) > MAX_STOP_CHARS for s in params.stop):
        problems.append(f"stop sequences must be at most {MAX_STOP_CHARS} characters")
    if params.seed is not None and not 0 <= params.seed < _SEED_LIMIT:
        problems.append(f"seed must be in [0, 2**32), not {params.seed}")
    grammar = None
    if params.json_schema is not None:
        try:
            grammar = LlamaGrammar.from_json_schema(json.dumps(params.json_schema), verbose=False)
        except (AssertionError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            # llama-cpp-python's schema converter reports unsupported schemas with assertions.
            problems.append(f"json_schema cannot be turned into a grammar: {exc}")
    if problems:
        raise InvalidParamsError("; ".join(problems))
    defaults = entry.sampling
    stops = tuple(dict.fromkeys([*params.stop, *defaults.stop, *extra_stops]))
    return GenerationParams(
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=_first(params.top_k, defaults.top_k, _TOP_K),
        min_p=_first(params.min_p, defaults.min_p, _MIN_P),
        repeat_penalty=_first(params.repeat_penalty, defaults.repeat_penalty, _REPEAT_PENALTY),
        stop=stops,
        # Without a client seed, the request id decides it: duplicates (at-least-once) give identical outputs.
        seed=params.seed if params.seed is not None or request_id is None else seed_for(request_id),
        grammar=grammar,
    )


def _first(*values: T | None) -> T:
    for value in values:
        if value is not None:
            return value
    msg = "no value"
    raise ValueError(msg)
