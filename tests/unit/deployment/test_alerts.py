"""The alert rules docker-compose's Prometheus loads: valid for promtool, each shown firing (and
not) on made-up series by promtool's rule tests, naming only metrics our code exports, and each
with its Grafana panel."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.unit.deployment.test_grafana import COMPOSE, DASHBOARD, METRIC, our_metrics

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "stack" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "stack" / "prometheus" / "alerts_test.yml"
ALERTS = {
    "TributaryConsumerLagGrowing",
    "TributaryDeadLetters",
    "TributaryCircuitBreakerOpen",
    "TributaryStallRecoveries",
    "TributaryApi5xxRate",
    "TributaryWebhook401Rate",
}


def rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def stackctl() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stackctl", REPO / "stack" / "stackctl.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = stackctl().cached_promtool()
    assert found is not None, (
        "promtool is missing: `make test` fetches it (`python stack/stackctl.py tools`, from "
        "Debian's prometheus package)"
    )
    return subprocess.run(
        [str(found), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=RULES.parent,
    )


def test_the_rules_are_the_alerts_operators_asked_for() -> None:
    assert set(rules()) == ALERTS
    for rule in rules().values():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_each_alert_fires_on_its_condition_and_not_otherwise() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in cases
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == ALERTS


def test_every_metric_an_alert_names_is_one_our_code_exports() -> None:
    known = our_metrics()
    for name, rule in rules().items():
        named = set(METRIC.findall(rule["expr"]))
        assert named, name
        assert named - known == set(), name


def test_each_alert_has_a_dashboard_panel_plotting_its_expression() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    for name, rule in rules().items():
        [panel] = [p for p in panels if p["description"].startswith(f"{name} ")]
        [target] = panel["targets"]
        condition = re.sub(r"\s+", " ", rule["expr"])
        assert condition.startswith(target["expr"]) or target["expr"] in condition, name


def test_compose_loads_the_rules_into_prometheus() -> None:
    config = yaml.safe_load((REPO / "stack" / "prometheus.yml").read_text())
    [rule_file] = config["rule_files"]
    volumes = COMPOSE["services"]["prometheus"]["volumes"]
    assert f"./stack/prometheus/alerts.yml:{rule_file}:ro" in volumes
