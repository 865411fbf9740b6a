"""Leave-one-source-out measurement, thresholds, and the shipped model's record of its data."""

import importlib.util
import json
import os
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from shared.guards.training import (
    Dataset,
    load_datasets,
    loso,
    rates,
    sha256,
    source_of,
    source_weights,
    threshold_at_fpr,
)
from tests.infra.helpers import ROOT

RECORD = json.loads((Path(str(files("shared.guards"))) / "injection_model.json").read_text())


def dataset(sources: list[str], labels: list[int]) -> Dataset:
    """A dataset of placeholder texts."""
    return Dataset([f"t{i}" for i in range(len(labels))], np.array(labels), sources, ["c"] * len(labels))


class TestHelpers:
    def test_source_of(self) -> None:
        """The repository of a composed source field."""
        assert source_of("a/b:x.json+c/d:y.json") == "a/b"
        assert source_of("") == "unknown"

    def test_threshold_keeps_the_fpr(self) -> None:
        """At most the target share of benign scores reaches the threshold."""
        y = np.array([0] * 20 + [1] * 5)
        p = np.concatenate([np.linspace(0, 0.95, 20), np.full(5, 0.99)])
        t = threshold_at_fpr(y, p, 0.05)
        assert rates(y, p, t)["fpr"] <= 0.05
        assert rates(y, p, t)["recall"] == 1.0

    def test_source_weights_balance_groups(self) -> None:
        """A big source does not outweigh a small one by its size."""
        data = dataset(["big"] * 90 + ["small"] * 10, [0] * 100)
        w = source_weights(data)
        assert w[:90].sum() / w[90:].sum() == pytest.approx(3.0)  # sqrt(90/10)

    def test_a_source_never_sets_its_own_threshold(self) -> None:
        """Held-out source A's high benign scores cannot raise A's own threshold."""
        data = dataset(["A"] * 4 + ["B"] * 20, [0, 0, 1, 1] + [0] * 20)
        scores = np.array([0.9, 0.9, 0.95, 0.95] + [0.1] * 20)
        report = loso(data, scores, 0.05)
        assert report["per_source"]["A"]["fpr"] == 1.0  # judged by B's threshold, so its benign lines are flagged
        assert report["per_source"]["A"]["recall"] == 1.0
        assert report["mean_recall"] == 1.0


class TestShippedModelRecord:
    def test_records_every_data_file_with_its_sha256(self) -> None:
        """Each training file is named with its hash and line count; files present here match their hashes."""
        files_ = {entry["file"]: entry for entry in RECORD["data"]}
        assert "tests/data/safety/injection_own.jsonl" in files_
        assert "tests/data/safety/injection_pypi.jsonl" in files_
        assert "tests/data/safety/injection_packages.jsonl" in files_
        assert any(name.startswith("shared/data/safety/") for name in files_)
        for name, entry in files_.items():
            assert len(entry["sha256"]) == 64
            path = ROOT / name if name.startswith("tests/") else ROOT.parent / name
            if path.exists():
                assert sha256(path) == entry["sha256"], name
                assert len(path.read_text().splitlines()) == entry["lines"]

    def test_records_thresholds_and_loso(self) -> None:
        """Both thresholds and the leave-one-source-out report with every source are recorded."""
        assert set(RECORD["thresholds"]) == {"prompt", "document"}
        sources = {
            source_of(json.loads(line)["source"])
            for name in (
                "injection_own.jsonl",
                "injection_pypi.jsonl",
                "injection_packages.jsonl",
            )
            for line in (ROOT / "tests/data/safety" / name).open()
        }
        assert sources <= set(RECORD["loso"]["per_source"])
        assert 0 <= RECORD["loso"]["mean_recall"] <= 1


SHARED_FILES = [ROOT.parent / entry["file"] for entry in RECORD["data"] if entry["file"].startswith("shared/")]


@pytest.mark.skipif(not all(p.exists() for p in SHARED_FILES), reason="needs ../shared/data/safety")
def test_loso_report_matches_a_rerun(tmp_path: Path) -> None:
    """Re-running the leave-one-source-out measurement on the recorded files gives the recorded report."""
    spec = importlib.util.spec_from_file_location("train_injection", ROOT / "scripts" / "train_injection.py")
    assert spec is not None
    assert spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    paths = [ROOT / e["file"] if e["file"].startswith("tests/") else ROOT.parent / e["file"] for e in RECORD["data"]]
    data = load_datasets(paths)
    cache = Path(os.environ.get("LLMOPS_TEST_EMBED_CACHE", tmp_path))
    measured = train.measure(data, train.embed(data.texts, cache), RECORD["target_fpr"])
    for key in ("mean_recall", "mean_fpr", "pooled_recall", "pooled_fpr"):
        assert measured["loso"][key] == pytest.approx(RECORD["loso"][key], abs=0.01), key
    for source, recorded in RECORD["loso"]["per_source"].items():
        again = measured["loso"]["per_source"][source]
        tolerance = 3.5 / max(recorded["n"], 1)  # a few borderline lines flip between CPUs (Intel vs AMD: 2-3)
        assert again["recall"] == pytest.approx(recorded["recall"], abs=tolerance), source
        assert again["fpr"] == pytest.approx(recorded["fpr"], abs=tolerance), source
    assert measured["thresholds"]["prompt"] == pytest.approx(RECORD["thresholds"]["prompt"], abs=0.02)
