"""Suite files: parsing, defaults, validation and the expansion into case runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.eval.suite import Suite, SuiteError, load_suite, parse_suite

SUITE = """
name: tiny
tenant: evals
defaults: {max_tokens: 32, temperature: 0.0}
knowledge:
  - tenant: docs
    paths: [docs]
configurations:
  - name: qwen
    model: qwen2.5-coder-0.5b-instruct
  - name: gemma-concise
    model: gemma-3-270m
    template: concise@1
    tenant: devtools
    params: {max_tokens: 16}
cases:
  - id: france
    prompt: What is the capital of France?
    category: factual
    expect: {contains: Paris, max_tokens: 32}
  - id: france-again
    paraphrase_of: france
    category: paraphrase
    messages:
      - {role: system, content: Be brief.}
      - {role: user, content: "Which city is the capital of France?"}
    tenant: docs
    model: gemma-3-270m
    params: {max_tokens: 8}
    expect:
      contains: [[Paris, París]]
      refused: false
"""

STARTER = Path(__file__).parents[3] / "evals" / "starter.yaml"


def parse(text: str = SUITE) -> Suite:
    return parse_suite(yaml.safe_load(text))


class TestParse:
    def test_fields(self) -> None:
        """Every section of the file is read; a prompt becomes one user message; one fact becomes a list."""
        suite = parse()
        assert suite.name == "tiny"
        assert [c.name for c in suite.configurations] == ["qwen", "gemma-concise"]
        first, second = suite.cases
        assert first.messages == [{"role": "user", "content": "What is the capital of France?"}]
        assert first.expect.contains == ["Paris"]
        assert first.expect.kinds() == ["contains", "max_tokens"]
        assert second.paraphrase_of == "france"
        assert second.expect.contains == [["Paris", "París"]]
        assert second.expect.kinds() == ["contains", "refused"]

    def test_runs_resolve_case_then_configuration_then_suite(self) -> None:
        """A case's tenant, model and params win over the configuration's, which win over the suite's."""
        runs = {(r.configuration.name, r.case.id): r for r in parse().runs()}
        assert len(runs) == 4
        plain = runs["qwen", "france"]
        assert (plain.tenant, plain.model, plain.template) == ("evals", "qwen2.5-coder-0.5b-instruct", None)
        assert plain.params == {"max_tokens": 32, "temperature": 0.0}
        concise = runs["gemma-concise", "france"]
        assert (concise.tenant, concise.template, concise.params["max_tokens"]) == ("devtools", "concise@1", 16)
        overridden = runs["gemma-concise", "france-again"]
        assert (overridden.tenant, overridden.model, overridden.params["max_tokens"]) == ("docs", "gemma-3-270m", 8)

    def test_knowledge_paths_are_relative_to_the_suite_file(self, tmp_path: Path) -> None:
        """`load_suite` makes knowledge paths absolute against the suite's folder."""
        path = tmp_path / "suite.yaml"
        path.write_text(SUITE)
        assert load_suite(path).knowledge[0].paths == [tmp_path / "docs"]

    def test_select(self) -> None:
        """Configurations and cases can be narrowed by name; unknown names are an error."""
        suite = parse().select(["qwen"], ["france"])
        assert [(r.configuration.name, r.case.id) for r in suite.runs()] == [("qwen", "france")]
        with pytest.raises(SuiteError, match="unknown cases"):
            parse().select(None, ["nope"])

    def test_default_configuration(self) -> None:
        """A suite without configurations runs once, as `default`."""
        suite = parse_suite({"name": "s", "cases": [{"id": "a", "prompt": "hi"}]})
        assert [c.name for c in suite.configurations] == ["default"]


class TestInvalid:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"cases": [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}]}, "duplicate case names: a"),
            ({"configurations": [{"name": "c"}, {"name": "c"}]}, "duplicate configuration names: c"),
            ({"cases": [{"id": "a", "prompt": "x", "paraphrase_of": "b"}]}, "unknown cases: b"),
            ({"cases": [{"id": "a", "prompt": "x", "expect": {"contains_all": ["x"]}}]}, "contains_all"),
            ({"cases": [{"id": "a", "prompt": "x", "messages": []}]}, "not both"),
            ({"cases": [{"id": "a", "prompt": "x", "params": {"max_tokens": 0}}]}, "max_tokens"),
            ({"cases": []}, "cases"),
        ],
    )
    def test_rejected(self, change: dict[str, object], message: str) -> None:
        """Duplicates, dangling paraphrases, unknown expectation kinds and bad parameters are refused."""
        with pytest.raises(SuiteError, match=message):
            parse_suite({"name": "s", "cases": [{"id": "a", "prompt": "x"}]} | change)

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A missing file or broken YAML is a `SuiteError`."""
        with pytest.raises(SuiteError):
            load_suite(tmp_path / "missing.yaml")
        broken = tmp_path / "broken.yaml"
        broken.write_text("name: [unclosed")
        with pytest.raises(SuiteError):
            load_suite(broken)


class TestStarterSuite:
    def test_starter_suite_is_valid_and_large_enough(self) -> None:
        """The committed starter suite parses, has at least 50 cases and covers every kind of case."""
        suite = load_suite(STARTER)
        assert len(suite.cases) >= 50
        kinds = {kind for case in suite.cases for kind in case.expect.kinds()}
        assert {"contains", "regex", "cites", "refused", "json_schema", "max_tokens", "max_latency_ms"} <= kinds
        assert sum(1 for c in suite.cases if c.paraphrase_of) >= 5
        assert all(path.exists() for source in suite.knowledge for path in source.paths)
