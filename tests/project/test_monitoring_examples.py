"""The drift monitoring examples (docs/examples/monitoring): the Grafana dashboard and the Prometheus
alert rules load, hold what Grafana and Prometheus need, and every metric their PromQL names is one
that a real `mmp serve-api` exports on /metrics."""

from __future__ import annotations

import json
import re

import httpx
import promql_parser
import pytest
import yaml

from tests.conftest import REPO, Server, clean_env, run_mmp

EXAMPLES = REPO / "docs" / "examples" / "monitoring"
DURATION = re.compile(r"^\d+[smhdw]$")


def dashboard() -> dict:
    return json.loads((EXAMPLES / "grafana-dashboard.json").read_text())


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load((EXAMPLES / "prometheus-rules.yaml").read_text())["groups"]
            for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects (it must parse)."""
    names: set[str] = set()

    def walk(node) -> None:
        if type(node).__name__ == "VectorSelector":
            names.add(node.name)
        for attribute in ("expr", "lhs", "rhs", "param", "vector_selector"):
            child = getattr(node, attribute, None)
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child)
        for child in getattr(node, "args", None) or []:
            walk(child)

    walk(promql_parser.parse(expr))
    return names


def expressions() -> list[str]:
    return [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]] + [r["expr"] for r in rules()]


@pytest.fixture(scope="module")
def exported(workspace) -> set[str]:
    """The metric names on /metrics of a real service on a model with a drift profile, after a prediction."""
    trained = run_mmp("train", "recipe=iris", "-q", cwd=workspace, env=clean_env())
    assert trained.code == 0, trained.err
    server = Server(workspace, trained.out.strip().splitlines()[-1])
    try:
        server.wait_ready()
        row = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}
        assert httpx.post(f"{server.url}/predict", json=row, timeout=30).status_code == 200
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_the_dashboard_reads_every_panel_from_the_datasource_variable():
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}" and target["refId"] and target["expr"]
    titles = " ".join(p["title"] for p in panels)
    assert "PSI per feature" in titles and "status" in titles.lower() and "window" in titles.lower()
    used = set().union(*(metric_names(t["expr"]) for p in panels for t in p["targets"]))
    assert used == {"mmp_drift_psi", "mmp_drift_status", "mmp_drift_window_rows"}


def test_the_rules_alert_when_a_column_stays_at_alert_and_warn_at_warn():
    found = {rule["alert"]: rule for rule in rules()}
    for rule in found.values():
        assert DURATION.match(rule["for"]) and rule["labels"]["severity"] and rule["annotations"]["summary"]
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
    for name, level, severity in (("MmpDriftAlert", 2, "critical"), ("MmpDriftWarning", 1, "warning")):
        expr = promql_parser.parse(found[name]["expr"])
        assert str(expr.op) == "=="
        assert float(str(expr.rhs)) == level and metric_names(str(expr.lhs)) == {"mmp_drift_status"}
        assert "column" in str(expr.lhs) and found[name]["labels"]["severity"] == severity
    assert int(found["MmpDriftAlert"]["for"][:-1]) >= 5


def test_every_metric_the_examples_name_is_exported_by_a_running_service(exported):
    assert {"mmp_drift_psi", "mmp_drift_status", "mmp_drift_window_rows"} <= exported
    for expr in expressions():
        assert metric_names(expr) <= exported, expr


def test_the_metric_check_sees_selectors_inside_functions_ranges_and_subqueries():
    assert metric_names('sum(rate(a_total[5m])) / on(job) b + max_over_time(c{x="1"}[1h:5m]) and -d') == \
        {"a_total", "b", "c", "d"}
