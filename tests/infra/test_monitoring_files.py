"""Prometheus and Grafana for docker-compose: configs parse, find every stage, and chart only real metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.stack.embedded import STAGES
from tests.infra.helpers import METRICS, ROOT, compose, metric_names
from tests.infra.kustomize import build

GRAFANA = ROOT / "infra" / "grafana"


def dashboard() -> dict[str, Any]:
    return dict(json.loads((GRAFANA / "dashboards" / "llmops.json").read_text()))


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def stage_services() -> dict[str, dict[str, Any]]:
    """Compose services that run a pipeline stage (``python -m services.<stage>``), the GPU variant included."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if svc.get("command", [])[:2] == ["python", "-m"] and svc["command"][2].removeprefix("services.") in STAGES
    }


class TestPrometheus:
    def test_scrapes_every_replica_of_every_stage_service(self) -> None:
        """dns_sd_configs (type A, so each --scale replica is a target) cover every compose service running a stage."""
        config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "llmops"]
        assert job["metrics_path"] == "/metrics"
        names = set()
        for sd in job["dns_sd_configs"]:
            assert sd["type"] == "A"
            assert sd["port"] == 8080
            names |= set(sd["names"])
        assert set(stage_services()) <= names <= set(compose()["services"])
        assert set(STAGES) <= names

    def test_scrape_port_is_the_services_health_port(self) -> None:
        """Each stage service serves /metrics on the health port its LLMOPS_<STAGE>_HEALTH_PORT sets."""
        for name, svc in stage_services().items():
            stage = svc["command"][2].removeprefix("services.")
            env = svc["environment"]
            assert env[f"LLMOPS_{stage.upper()}_HEALTH_PORT"] == "8080", name
            assert env[f"LLMOPS_{stage.upper()}_HEALTH_HOST"] == "0.0.0.0", name

    def test_compose_mounts_the_config(self) -> None:
        """The Prometheus service reads this file and is health-checked."""
        prometheus = compose()["services"]["prometheus"]
        assert "./infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
        assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
        assert "/-/ready" in " ".join(prometheus["healthcheck"]["test"])


class TestGrafanaDashboard:
    def test_uses_only_contract_metrics(self) -> None:
        """Every llmops_* series a panel queries is a metric of the contract (histograms via _bucket)."""
        used = set().union(*(metric_names(e) for e in exprs()))
        assert used <= set(METRICS)

    def test_charts_what_operators_need(self) -> None:
        """Latency p50 and p99, throughput, lag, verdicts, tokens/s and time to first token are all there."""
        text = "\n".join(exprs())
        for quantile in ("0.5", "0.99"):
            assert (
                f"histogram_quantile({quantile}, sum by (stage, le) (rate(llmops_stage_duration_seconds_bucket" in text
            )
        assert "rate(llmops_stage_messages_total" in text
        for metric in (
            "llmops_consumer_lag",
            "llmops_safety_verdicts_total",
            "llmops_tokens_per_second_bucket",
            "llmops_time_to_first_token_seconds_bucket",
            "llmops_tokens_total",
            "llmops_dlq_messages_total",
        ):
            assert metric in text, metric

    def test_counters_are_rated_and_histograms_read_by_bucket(self) -> None:
        """A counter is never charted raw, and a histogram only through its buckets."""
        for expr in exprs():
            for name in metric_names(expr):
                if METRICS[name] == "counter":
                    assert f"rate({name}" in expr, expr
                if METRICS[name] == "histogram":
                    assert f"{name}_bucket" in expr, expr

    def test_panels_are_well_formed(self) -> None:
        """Unique ids, every panel and target on the templated Prometheus data source, no overlapping grid."""
        dash = dashboard()
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids))
        assert any(v["name"] == "datasource" and v["type"] == "datasource" for v in dash["templating"]["list"])
        cells: set[tuple[int, int]] = set()
        for panel in dash["panels"]:
            grid = panel["gridPos"]
            area = {
                (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not area & cells, panel["title"]
            assert grid["x"] + grid["w"] <= 24
            cells |= area
        for panel in panels():
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])

    def test_variables_filter_every_query(self) -> None:
        """Queries on per-stage metrics honour $stage; queries on per-model metrics honour $model."""
        for expr in exprs():
            labels = {
                "stage" if n.startswith(("llmops_stage", "llmops_dlq", "llmops_safety", "llmops_consumer")) else "model"
                for n in metric_names(expr)
            }
            (label,) = labels
            assert f'{label}=~"${label}"' in expr, expr


class TestGrafanaCompose:
    def test_provisioning_points_at_the_compose_prometheus_and_dashboards(self) -> None:
        """The data source is the prometheus service; the dashboard provider reads the folder compose mounts."""
        grafana = compose()["services"]["grafana"]
        source = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
        (ds,) = source["datasources"]
        assert ds["type"] == "prometheus"
        assert ds["url"] == "http://prometheus:9090"
        provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/llmops.yml").read_text())
        path = provider["providers"][0]["options"]["path"]
        assert f"./infra/grafana/dashboards:{path}:ro" in grafana["volumes"]
        assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
        assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
        assert "/api/health" in " ".join(grafana["healthcheck"]["test"])

    def test_admin_password_comes_from_the_environment_only(self) -> None:
        """No password in the file: it is ${GRAFANA_ADMIN_PASSWORD} without a default; empty or "admin" stops Grafana."""
        grafana = compose()["services"]["grafana"]
        reference = "${GRAFANA_ADMIN_PASSWORD:-}"  # the variable, and an empty default: not a password
        assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == reference
        guard = " ".join(grafana["entrypoint"])
        assert '[ -n "$$GF_SECURITY_ADMIN_PASSWORD" ] && [ "$$GF_SECURITY_ADMIN_PASSWORD" != admin ] ||' in guard
        assert "exit 1" in guard
        assert guard.endswith("exec /run.sh")
        assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
class TestPromtool:
    def promtool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)

    def test_compose_config_is_valid(self) -> None:
        """Prometheus's own checker accepts the compose scrape config."""
        result = self.promtool("check", "config", str(ROOT / "infra/prometheus/prometheus.yml"))
        assert result.returncode == 0, result.stdout + result.stderr

    def test_kubernetes_scrape_config_is_valid(self, tmp_path: Path) -> None:
        """Prometheus's own checker accepts the in-cluster scrape job (where promtool has Kubernetes discovery)."""
        objs = build(ROOT / "infra/k8s/overlays/production")
        (cm,) = [o for o in objs if "prometheus.yml" in o.get("data", {})]
        config = tmp_path / "prometheus.yml"
        config.write_text(cm["data"]["prometheus.yml"])
        result = self.promtool("check", "config", str(config))
        if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
            pytest.skip("this promtool is built without Kubernetes discovery (Debian's is)")
        assert result.returncode == 0, result.stdout + result.stderr

    def test_every_dashboard_query_parses(self, tmp_path: Path) -> None:
        """Each panel query, with Grafana's variables filled in, is valid PromQL (checked as a recording rule)."""
        fill = {"$__rate_interval": "1m", '"$stage"': '".*"', '"$model"': '".*"'}
        rules = []
        for index, query in enumerate(exprs()):
            expr = query
            for variable, value in fill.items():
                expr = expr.replace(variable, value)
            rules.append({"record": f"llmops:dashboard:{index}", "expr": expr})
        assert "$" not in json.dumps(rules)
        path = tmp_path / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        result = self.promtool("check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(rules)} rules found" in result.stdout


class TestMetricsContract:
    def test_contract_matches_the_code(self) -> None:
        """The metric names the dashboards use are exactly the ones the services export."""
        from shared.runtime.metrics import METRIC_NAMES, StageMetrics

        assert set(METRICS) == set(METRIC_NAMES)
        exported = {m.name for m in StageMetrics("x").registry.collect()}
        # prometheus_client reports counters without their _total suffix.
        assert {n.removesuffix("_total") for n in METRICS} == exported
