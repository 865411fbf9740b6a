"""What the deployment-file tests compare the files with: the real settings classes and service wiring."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from services.gateway.settings import GatewaySettings
from services.grounding.settings import GroundingSettings
from services.inference.settings import InferenceSettings
from services.postprocess.settings import PostprocessSettings
from services.preprocess.settings import PreprocessSettings
from services.safety.settings import SafetySettings
from shared.cache import CacheSettings
from shared.knowledge.settings import KnowledgeSettings
from shared.runtime.settings import CoreSettings, KafkaSettings, StageSettings, TopicSettings
from shared.text.embedder import EmbedderSettings

__all__ = [
    "METRICS",
    "ROOT",
    "STAGE_SETTINGS",
    "WiredStage",
    "compose",
    "known_variables",
    "metric_names",
    "settings_env",
    "wired_stage",
]

ROOT = Path(__file__).resolve().parents[2]

STAGE_SETTINGS: dict[str, type[StageSettings]] = {
    "preprocess": PreprocessSettings,
    "grounding": GroundingSettings,
    "safety": SafetySettings,
    "inference": InferenceSettings,
    "postprocess": PostprocessSettings,
}

# The metrics contract every service serves at /metrics (name: Prometheus type); dashboards may use only these.
METRICS = {
    "llmops_stage_messages_total": "counter",  # {stage, outcome}: ok, an error code, or poison
    "llmops_stage_duration_seconds": "histogram",  # {stage}
    "llmops_dlq_messages_total": "counter",  # {stage, code}
    "llmops_safety_verdicts_total": "counter",  # {stage, verdict, check}
    "llmops_tokens_total": "counter",  # {model, direction, traffic}: prompt / completion; live / shadow
    "llmops_tokens_per_second": "histogram",  # {model}
    "llmops_time_to_first_token_seconds": "histogram",  # {model}
    "llmops_consumer_lag": "gauge",  # {stage, topic, partition}
    "llmops_gpu_layers": "gauge",  # {model}
    "llmops_cache_lookups_total": "counter",  # {model, result}: hit / miss (safety)
    "llmops_shadow_messages_total": "counter",  # {stage}: outputs of shadow requests (replay, evaluation)
    "llmops_answers_total": "counter",  # {alias, model, outcome}: answered / refused / cached / error (postprocess)
    "llmops_answer_latency_seconds": "histogram",  # {alias, model}: request creation to final answer
}
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """The contract metric each llmops_* series in a PromQL expression belongs to (histogram suffixes removed)."""
    names = set()
    for series in re.findall(r"\bllmops_[a-z0-9_]+", expr):
        base = series
        for suffix in _SERIES_SUFFIXES:
            if series.endswith(suffix) and METRICS.get(series.removesuffix(suffix)) == "histogram":
                base = series.removesuffix(suffix)
        names.add(base)
    return names


def known_variables() -> set[str]:
    """Every LLMOPS_* environment variable some settings class reads."""
    known = set()
    for cls in (
        KafkaSettings,
        TopicSettings,
        CoreSettings,
        GatewaySettings,
        KnowledgeSettings,
        CacheSettings,
        EmbedderSettings,
        *STAGE_SETTINGS.values(),
    ):
        prefix = cls.model_config["env_prefix"]
        known |= {f"{prefix}{name}".upper() for name in cls.model_fields}
    return known


def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed."""
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@contextmanager
def settings_env(env: Mapping[str, str]) -> Iterator[None]:
    """Exactly these LLMOPS_* variables (and no .env file) while the block runs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT / "infra")  # no .env there: only `env` counts
        for name in list(os.environ):
            if name.startswith("LLMOPS_"):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        yield


class WiredStage:
    """One stage as its real ``create_service`` wires it under some environment."""

    def __init__(self, stage: str, settings: StageSettings, input_topic: str, group_id: str) -> None:
        self.stage = stage
        self.settings = settings
        self.input_topic = input_topic
        self.group_id = group_id


def wired_stage(stage: str, env: Mapping[str, str]) -> WiredStage:
    """Build ``services.<stage>.app.create_service`` with ``env`` (cheap: nothing connects or loads)."""
    app = importlib.import_module(f"services.{stage}.app")
    with settings_env(env):
        settings = STAGE_SETTINGS[stage]()
        service = app.create_service(settings)
    return WiredStage(stage, settings, service.input_topic, service.group_id)


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as module ``name``; its sibling scripts import as when it runs by path."""
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.append(scripts)
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
