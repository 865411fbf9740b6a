"""shared/cli/tenants.py: ``llmops tenants check`` validates the configuration and prints each tenant's settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from shared.cli.main import main

GOOD = """\
default_reply_topics: ["llmops.responses.{tenant}", "llmops.responses.gateway-*"]
tenants:
  acme:
    request_topic: true
    quota: {requests_per_minute: 60}
    preprocess: {typo_correction: false}
    grounding: {template: concise@1}
    cache: {enabled: true}
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what each test sets: no LLMOPS_* variable, no .env file."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LLMOPS_")]:
        monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenants.yaml"
    path.write_text(text)
    return path


class TestTenantsCheck:
    def test_prints_each_tenants_effective_settings(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A valid file: exit 0 and the settings each stage applies, defaults filled in."""
        assert main(["tenants", "check", "--file", str(write(tmp_path, GOOD))]) == 0
        shown = yaml.safe_load(capsys.readouterr().out)["tenants"]["acme"]
        assert shown["request_topic"] == "llmops.requests.acme"
        assert shown["reply_topics"] == ["llmops.responses.{tenant}", "llmops.responses.gateway-*"]
        assert shown["quota"] == {"requests_per_minute": 60, "tokens_per_day": None}
        assert shown["typo_correction"] is False
        assert shown["template"] == "concise@1"
        assert shown["cache"]["enabled"] is True
        assert shown["cache"]["threshold"] == 0.95  # the global setting, not overridden
        assert "gemma-3-270m" in shown["models"]

    def test_a_mistake_exits_1_naming_it(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown template: exit 1, the tenant and the field on stderr."""
        path = write(tmp_path, GOOD.replace("concise@1", "concise@9"))
        assert main(["tenants", "check", "--file", str(path)]) == 1
        assert "tenant 'acme': grounding.template 'concise@9' is not a known template" in capsys.readouterr().err

    def test_an_unknown_key_exits_1(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A misspelt key is named."""
        path = write(tmp_path, "tenants:\n  acme: {quotas: {requests_per_minute: 1}}\n")
        assert main(["tenants", "check", "--file", str(path)]) == 1
        assert "tenant 'acme': quotas: unknown key" in capsys.readouterr().err

    def test_an_old_variable_disagreeing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An old per-stage variable setting a field differently is reported with both sources."""
        monkeypatch.setenv("LLMOPS_CACHE_TENANTS", '{"acme": {"enabled": false}}')
        assert main(["tenants", "check", "--file", str(write(tmp_path, GOOD))]) == 1
        err = capsys.readouterr().err
        assert "tenant 'acme': cache.enabled is true in LLMOPS_TENANTS_FILE" in err
        assert "but false in LLMOPS_CACHE_TENANTS" in err

    def test_reads_the_environment_without_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --file it checks LLMOPS_TENANTS_FILE (and a broken one is reported, not raised)."""
        monkeypatch.setenv("LLMOPS_TENANTS_FILE", str(write(tmp_path, "tenants: {acme: {models: [gpt-9]}}\n")))
        assert main(["tenants", "check"]) == 1
        assert "tenant 'acme': models: 'gpt-9' is not a registry model or alias" in capsys.readouterr().err

    def test_nothing_configured(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No configuration is valid: every stage keeps its defaults."""
        assert main(["tenants", "check"]) == 0
        assert yaml.safe_load(capsys.readouterr().out)["tenants"] == {}

    def test_the_documented_example_passes(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """docs/tenants.md's full example is a valid configuration (its shortened key hash made whole)."""
        doc = (Path(__file__).parents[3] / "docs" / "tenants.md").read_text()
        example = doc.split("## Format\n\n```yaml\n")[1].split("```")[0]
        example = example.replace("5e884898da28047151d0e56f8dc62927...", "5e" + "a" * 62)
        assert main(["tenants", "check", "--file", str(write(tmp_path, example))]) == 0
        shown = yaml.safe_load(capsys.readouterr().out)["tenants"]
        assert shown["acme"]["gateway"]["keys"] == ["acme-ci"]
        assert shown["default"]["reply_topics"] == ["llmops.responses", "llmops.responses.gateway-*"]
