"""The Grafana dashboard and the Prometheus alert rules in deploy/: they load, and every
expression names a metric the platform exports (read from a real /metrics answer).

promtool is not installed here, so PromQL itself is not parsed: metric names are taken
out of each expression (after dropping label matchers, ranges, `by (...)` lists, strings
and Grafana variables) and checked against what /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "platform.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# PromQL's functions, aggregations and keywords, and the series Prometheus makes itself.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "vector", "absent", "clamp_min", "label_values", "bool", "offset",
}  # fmt: skip
PROMETHEUS_OWN = {"up"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@pytest.fixture(scope="module")
def exported(django_db_setup: None, django_db_blocker) -> set[str]:
    """Every series name /metrics can answer with: each family's samples' names."""
    with django_db_blocker.unblock():
        response = APIClient(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_HOST="localhost")
    assert response.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return words - PROMQL_WORDS


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_metric_names_are_found_in_expressions() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{x=~"5..",t="$t"}[5m])))'
    assert metric_names(expr) == {"a_bucket"}
    assert metric_names(
        "sum(b) > 0 and on() (sum(increase(c_total[10m])) or on() vector(0)) == 0"
    ) == {
        "b",
        "c_total",
    }


@pytest.mark.django_db
def test_every_dashboard_expression_names_exported_metrics(exported: set[str]) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 16
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{expr}: {sorted(names - exported)} not exported"


@pytest.mark.django_db
def test_every_alert_expression_names_exported_metrics(exported: set[str]) -> None:
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported | PROMETHEUS_OWN, f"{rule['alert']}: {sorted(names - exported)}"


def test_the_dashboard_shows_what_operators_look_for() -> None:
    board = json.loads(DASHBOARD.read_text())
    titles = " | ".join(panel["title"].lower() for panel in board["panels"])
    for topic in (
        "request rate", "p50 / p95 / p99", "error rate", "task runs", "task failures",
        "queue depth", "outbox lag", "breaker", "sign-in failures",
    ):  # fmt: skip
        assert topic in titles, topic
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    assert board["uid"] and board["templating"]["list"][0]["type"] == "datasource"


def test_the_alerts_cover_workers_outbox_errors_and_breakers() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert {
        "PlatformWorkerDown", "PlatformOutboxLag", "PlatformHighErrorRate", "PlatformBreakerOpen",
    } <= set(rules)  # fmt: skip
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
