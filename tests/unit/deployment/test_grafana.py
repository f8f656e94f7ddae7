"""The Grafana dashboard and Prometheus config that docker-compose mounts, checked as files:
the dashboard parses, every metric its queries name is one our code really exports (built from
the API's and the worker's own registries, not a list kept by hand), and compose mounts what
provisioning expects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import faust
import yaml
from prometheus_client import CollectorRegistry

from agents.worker.breaker_metrics import BreakerCollector
from agents.worker.metrics import WorkerMetrics, install_worker_metrics
from api.metrics import ApiMetrics

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "stack" / "grafana" / "dashboards" / "tributary.json"
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
METRIC = re.compile(r"\b((?:tributary|faust)_[a-z0-9_]+)\b")


def exported(registry: CollectorRegistry) -> set[str]:
    """Every series name a scrape of `registry` can contain (labelled ones included)."""
    names = set()
    for family in registry.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def our_metrics() -> set[str]:
    app = faust.App("unit", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)
    worker = WorkerMetrics()
    install_worker_metrics(app, worker)
    # The providers' breakers, as `agents.worker.process.build_app` registers them.
    worker.registry.register(BreakerCollector(dict))
    return exported(ApiMetrics().registry) | exported(worker.registry)


async def test_every_dashboard_query_names_metrics_that_exist() -> None:
    known = our_metrics()
    named = {name for expr in queries() for name in METRIC.findall(expr)}
    assert named, "the dashboard queries nothing"
    assert named - known == set()
    # What the issue asks the dashboard to show is there.
    for wanted in (
        "tributary_api_request_duration_seconds_bucket",
        "tributary_worker_events_total",
        "tributary_worker_event_latency_seconds_bucket",
        "tributary_worker_consumer_lag",
        "tributary_worker_table_keys",
        "tributary_worker_dead_letters_total",
        "tributary_worker_retries_total",
    ):
        assert wanted in named


def test_api_latency_is_shown_as_p50_p95_p99() -> None:
    api = [expr for expr in queries() if "tributary_api_request_duration_seconds" in expr]
    quantiles = {q for expr in api for q in re.findall(r"histogram_quantile\(([0-9.]+)", expr)}
    assert quantiles == {"0.5", "0.95", "0.99"}


def test_panels_use_the_provisioned_data_source() -> None:
    source = yaml.safe_load(
        (REPO / "stack/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    [prometheus] = source["datasources"]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == prometheus["uid"]
    assert prometheus["url"] == "http://prometheus:9090"


def mounts(service: str) -> dict[str, str]:
    """Container path -> repo path of a service's bind mounts."""
    found = {}
    for volume in COMPOSE["services"][service]["volumes"]:
        source, target = volume.split(":")[:2]
        found[target] = source
    return found


def test_compose_mounts_the_prometheus_config_and_scrapes_both_processes() -> None:
    prometheus = COMPOSE["services"]["prometheus"]
    [config] = [a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config")]
    assert mounts("prometheus")[config] == "./stack/prometheus.yml"
    scrape: dict[str, Any] = yaml.safe_load((REPO / "stack/prometheus.yml").read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for c in job["static_configs"]
        for target in c["targets"]
    }
    assert targets == {"api:8080", "worker:6066"}
    # The API's /metrics needs the operator scope: the token reaches Prometheus as a secret.
    [api] = [job for job in scrape["scrape_configs"] if job["job_name"] == "tributary-api"]
    token_file = api["authorization"]["credentials_file"]
    assert token_file == f"/run/secrets/{prometheus['secrets'][0]}"
    secret = COMPOSE["secrets"][prometheus["secrets"][0]]
    assert secret == {"environment": "TRIBUTARY_OPERATOR_TOKEN"}


def test_compose_mounts_grafana_provisioning_and_the_dashboard_where_it_looks() -> None:
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"] == "./stack/grafana/provisioning"
    provider = yaml.safe_load(
        (REPO / "stack/grafana/provisioning/dashboards/tributary.yml").read_text()
    )
    [files] = provider["providers"]
    assert grafana[files["options"]["path"]] == "./stack/grafana/dashboards"
    for source in grafana.values():
        assert (REPO / source).exists(), source
