"""Inference settings (``LLMOPS_INFERENCE_*``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.runtime.settings import StageSettings

__all__ = ["InferenceSettings"]


class InferenceSettings(StageSettings):
    """Settings of the inference service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_INFERENCE_", env_file=".env", extra="ignore")

    model: str | None = Field(default=None, description="Model loaded at start; the registry default when absent.")
    workers: int = Field(
        default=1, ge=1, le=64, description="Worker processes, each with its own model, in the same consumer group."
    )
    parallel: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Sequences decoded together in one model (continuous batching); 1 = one generation at a time. "
            "The KV cache holds parallel x n_ctx tokens; a poll hands the stage up to this many requests."
        ),
    )
    prefill_chunk: int = Field(
        default=256, ge=16, description="Most prompt tokens of one newcomer read per decode step (parallel > 1)."
    )
    batch_timeout_ms: int = Field(
        default=100,
        ge=1,
        description="Longest one poll waits for a first record (parallel > 1); it returns as soon as one arrives.",
    )
    kv_cache_mb: int | None = Field(
        default=None,
        ge=1,
        description="Most MiB the KV cache may take (parallel > 1); the host's available memory when absent.",
    )
    n_gpu_layers: int | Literal["auto"] = Field(
        default="auto", description="Layers offloaded to the GPU; auto = all when the build supports a GPU, else 0."
    )
    main_gpu: int = Field(default=0, ge=0, description="GPU that holds the model (or its scratch, when split).")
    tensor_split: list[float] | None = Field(
        default=None, description="Share of the model per GPU, e.g. [0.5, 0.5]; one GPU when absent."
    )
    flash_attn: bool = Field(default=False, description="Flash attention (GPU builds).")
    n_ctx: int | None = Field(default=None, ge=256, description="Context size; the registry's when absent.")
    n_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    n_batch: int = Field(default=512, ge=1, description="Prompt tokens per decode call (logical batch).")
    n_ubatch: int = Field(default=512, ge=1, description="Physical batch; at most n_batch.")
    prompt_cache: bool = Field(
        default=True,
        description="Reuse the KV cache for shared prompt prefixes (history); off recomputes every prompt.",
    )
    prompt_cache_mb: int = Field(
        default=256,
        ge=0,
        description="KV states of recent conversations kept in RAM per worker; 0 keeps only the live one.",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus /metrics port (worker i: port + i); 0 = off."
    )
    verify_sha256: bool = Field(default=True, description="Hash-check a model file before loading it (once per file).")
    warm_up_tokens: int = Field(
        default=1, ge=0, description="Tokens generated at start so the first request is not cold."
    )
    bench_skip_generation: bool = Field(
        default=False,
        description=(
            "Benchmarks only: answer every request with an empty completion without loading or running a "
            "model, so the hops can be timed on their own (`make bench`, hop latency). Never in production."
        ),
    )
