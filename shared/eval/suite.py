"""The suite file (YAML): configurations to compare, cases with expectations, knowledge to ingest first.

Example:
    >>> suite = load_suite(Path("evals/starter.yaml"))
    >>> [(run.configuration.name, run.case.id) for run in suite.runs()][:1]
    [('qwen-default', 'capital-france')]

"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.contracts.envelope import SamplingParams

__all__ = [
    "Case",
    "CaseRun",
    "Configuration",
    "Expectations",
    "Fact",
    "KnowledgeSource",
    "Suite",
    "SuiteError",
    "load_suite",
    "parse_suite",
]

#: A fact: one string, or a list of alternatives any one of which is enough.
Fact = str | list[str]


class SuiteError(ValueError):
    """A suite file that cannot be read or does not describe a valid suite."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expectations(_Strict):
    """What an answer must satisfy; every kind given is checked, all must pass."""

    contains: list[Fact] | None = Field(
        default=None, description="Facts the answer holds, case-insensitive; a list item is a set of alternatives."
    )
    regex: str | None = Field(default=None, description="A pattern the answer matches (re.search, case-insensitive).")
    cites: str | None = Field(default=None, description="A source among the answer's citations (suffix match).")
    refused: bool | str | None = Field(
        default=None,
        description="true: refused; false: not refused; a string: refused with that category (or its prefix).",
    )
    json_schema: dict[str, Any] | None = Field(default=None, description="The answer is JSON valid against it.")
    max_tokens: int | None = Field(default=None, ge=0, description="Completion tokens at most (0: no generation).")
    max_latency_ms: float | None = Field(default=None, gt=0, description="End-to-end latency at most.")

    @model_validator(mode="before")
    @classmethod
    def _single_fact(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("contains"), str):
            return data | {"contains": [data["contains"]]}
        return data

    def kinds(self) -> list[str]:
        """The expectation kinds this case checks, in a fixed order."""
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


class Configuration(_Strict):
    """One way of serving the suite: a model, a template and a tenant (whose safety policy applies)."""

    name: str = Field(min_length=1)
    model: str | None = Field(default=None, description="Registry model; the pipeline's default when absent.")
    template: str | None = Field(default=None, description="Prompt template reference, e.g. 'concise@1'.")
    tenant: str | None = Field(default=None, description="Tenant, and so its safety policy; cases may override it.")
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters for every case.")


class Case(_Strict):
    """One question and what its answer must satisfy."""

    id: str = Field(min_length=1)
    messages: list[dict[str, str]] = Field(min_length=1, description="Chat messages; `prompt` is a shorthand.")
    category: str = Field(default="general")
    tenant: str | None = Field(default=None, description="Overrides the configuration's tenant (e.g. a KB tenant).")
    template: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters; over the defaults.")
    expect: Expectations = Field(default_factory=Expectations)
    paraphrase_of: str | None = Field(default=None, description="The id of the case this one rephrases.")

    @model_validator(mode="before")
    @classmethod
    def _prompt_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt" in data:
            data = dict(data)
            if "messages" in data:
                msg = "give `prompt` or `messages`, not both"
                raise ValueError(msg)
            data["messages"] = [{"role": "user", "content": data.pop("prompt")}]
        return data


class KnowledgeSource(_Strict):
    """Files ingested into a tenant's knowledge base before the run (paths relative to the suite file)."""

    tenant: str
    paths: list[Path] = Field(min_length=1)


@dataclass(frozen=True)
class CaseRun:
    """One case under one configuration, with everything resolved."""

    configuration: Configuration
    case: Case
    tenant: str
    model: str | None
    template: str | None
    params: dict[str, Any]


class Suite(_Strict):
    """A whole suite file."""

    name: str = Field(min_length=1)
    description: str = ""
    configurations: list[Configuration] = Field(default_factory=lambda: [Configuration(name="default")], min_length=1)
    defaults: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters for every case.")
    tenant: str = Field(default="default", description="Tenant of cases and configurations that name none.")
    knowledge: list[KnowledgeSource] = Field(default_factory=list)
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        for label, names in (("configuration", [c.name for c in self.configurations]), ("case", self.case_ids())):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                msg = f"duplicate {label} names: {', '.join(duplicates)}"
                raise ValueError(msg)
        ids = set(self.case_ids())
        unknown = sorted(c.paraphrase_of for c in self.cases if c.paraphrase_of and c.paraphrase_of not in ids)
        if unknown:
            msg = f"paraphrase_of names unknown cases: {', '.join(unknown)}"
            raise ValueError(msg)
        for run in self.runs():  # sampling parameters fail here, not one request at a time
            try:
                SamplingParams.model_validate(run.params)
            except ValidationError as exc:
                msg = f"case {run.case.id!r} under {run.configuration.name!r}: {exc}"
                raise ValueError(msg) from exc
        return self

    def case_ids(self) -> list[str]:
        """The cases' ids, in file order."""
        return [c.id for c in self.cases]

    def select(self, configurations: list[str] | None = None, cases: list[str] | None = None) -> Suite:
        """The suite restricted to the named configurations and cases (``None``: all)."""
        update: dict[str, Any] = {}
        if configurations:
            missing = set(configurations) - {c.name for c in self.configurations}
            if missing:
                raise SuiteError(f"unknown configurations: {', '.join(sorted(missing))}")
            update["configurations"] = [c for c in self.configurations if c.name in configurations]
        if cases:
            missing = set(cases) - set(self.case_ids())
            if missing:
                raise SuiteError(f"unknown cases: {', '.join(sorted(missing))}")
            update["cases"] = [c for c in self.cases if c.id in cases]
        return self.model_copy(update=update)

    def runs(self) -> Iterator[CaseRun]:
        """Every case under every configuration: case values win over the configuration's, then the suite's."""
        for config in self.configurations:
            for case in self.cases:
                yield CaseRun(
                    configuration=config,
                    case=case,
                    tenant=case.tenant or config.tenant or self.tenant,
                    model=case.model or config.model,
                    template=case.template or config.template,
                    params=self.defaults | config.params | case.params,
                )


def parse_suite(data: Any, *, base_dir: Path | None = None) -> Suite:
    """A suite from parsed YAML; knowledge paths are made absolute against ``base_dir``."""
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(str(exc)) from exc
    if base_dir is None:
        return suite
    knowledge = [
        k.model_copy(update={"paths": [p if p.is_absolute() else (base_dir / p).resolve() for p in k.paths]})
        for k in suite.knowledge
    ]
    return suite.model_copy(update={"knowledge": knowledge})


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SuiteError(f"{path}: {exc}") from exc
    return parse_suite(data, base_dir=path.resolve().parent)
