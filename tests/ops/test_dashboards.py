"""The Grafana dashboard and the Prometheus rules query only what /metrics exports.

promtool (Debian's ``prometheus`` package, installed by deploy/install-system-deps.sh)
checks the rules and the scrape config and runs the rules' unit tests.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from backend.operations.work_metrics import count_push_outcomes, observe_transcode_seconds

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "groundwork.json"
# Series Prometheus makes itself, and labels it adds to every scraped series.
PROMETHEUS_OWN = {"up"}
TARGET_LABELS = {"job", "instance", "pod"}

_KEYWORDS = {"by", "without", "and", "or", "unless", "offset", "on", "ignoring", "group_left", "group_right",
             "bool", "inf", "nan"}
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def promql_of_rules() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def promql_of_dashboard() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (functions, keywords and labels left out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    bare = re.sub(r"\{[^}]*\}", " ", bare)  # label matchers
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)  # ranges and subqueries
    bare = bare.replace("$__rate_interval", "")
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(\()?", bare):
        name, is_call = match.group(1), match.group(2)
        if is_call or name.lower() in _KEYWORDS or re.fullmatch(r"\d.*", name):
            continue
        names.add(name)
    return names


def matcher_labels(expr: str) -> dict[str, set[str]]:
    """Label names each selector matches on, by series name."""
    found: dict[str, set[str]] = {}
    for name, matchers in _SELECTOR.findall(expr):
        found.setdefault(name, set()).update(_MATCHER.findall(matchers))
    return found


@pytest.fixture
def exported(app, client) -> dict[str, set[str]]:
    """Series name → label names, as /metrics exports them after a little of every kind of work."""
    client.get("/healthz")
    with app.app_context():
        count_push_outcomes({"sent": 2, "auth_error": 1})
        observe_transcode_seconds(3.0)
    text = client.get("/metrics").get_data(as_text=True)
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def test_every_metric_the_dashboard_and_alerts_query_is_exported(exported):
    queries = promql_of_rules() + promql_of_dashboard()
    assert len(queries) > 20
    queried = set().union(*(metric_names(expr) for expr in queries))
    assert {"groundwork_queue_oldest_job_age_seconds", "groundwork_push_outcomes_total",
            "groundwork_media_transcode_seconds_bucket", "groundwork_analytics_events_ingested_total",
            "groundwork_http_request_duration_seconds_bucket"} <= queried
    missing = sorted(queried - set(exported) - PROMETHEUS_OWN)
    assert not missing, f"queried but not exported by /metrics: {missing}"
    for expr in queries:
        for name, labels in matcher_labels(expr).items():
            if name in PROMETHEUS_OWN:
                continue
            unknown = labels - exported[name] - TARGET_LABELS
            assert not unknown, f"{name} has no label {sorted(unknown)} (in: {expr.strip()[:120]})"


def test_metric_name_extraction_leaves_out_functions_labels_and_keywords():
    expr = ('sum by (le) (max without (instance, pod) (rate(a_bucket{job=~"$job", queue="x"}[5m]))) '
            '/ ignoring(queue) b_total offset 1d > 0.5 and on() up == 0')
    assert metric_names(expr) == {"a_bucket", "b_total", "up"}
    assert matcher_labels(expr) == {"a_bucket": {"job", "queue"}}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run deploy/install-system-deps.sh (Debian package prometheus)"
    return found


@pytest.mark.parametrize("command", [["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"],
                                     ["test", "rules", "alerts_test.yml"]], ids=" ".join)
def test_promtool_accepts_the_rules_config_and_rule_tests(command):
    result = subprocess.run([promtool(), *command], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_says_how_bad_and_what_it_means():
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert len(names) == len(set(names))
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_dashboard_is_a_grafana_dashboard_on_a_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for watched in ("requests", "error", "latency", "queue depth", "oldest", "push outcomes", "transcode",
                    "ingested"):
        assert watched in titles, f"no panel for {watched}"
