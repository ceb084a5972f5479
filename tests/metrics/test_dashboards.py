"""docs/grafana/sluice-dashboard.json and docs/prometheus/alerts.yaml, checked against what
`/metrics` exposes.

A dashboard panel or an alert that names a metric or a label Sluice does not have is not an
error anywhere: Prometheus answers an empty result, the panel shows "No data" and the alert never
fires. So every PromQL expression is read here (roughly: metric names, label matchers, `by` and
`without` clauses, legends and `$labels` in annotations) and compared with the metric table
(names.py) and the HTTP process's instruments (process.py). Cluster metrics have the same value
on every node and must be aggregated with `max` (or `min`), never summed; per-process ones sum.

The reading is a few regular expressions, not a PromQL parser: functions that add labels
(label_replace, label_join) are not understood, and the test says so when one is used.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sluice.metrics.names import CLUSTER
from sluice.metrics.process import ProcessMetrics

ROOT = Path(__file__).parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "sluice-dashboard.json"
ALERTS = ROOT / "docs" / "prometheus" / "alerts.yaml"
STORE_UP = "sluice_metrics_store_up"
TARGET_LABELS = frozenset({"job", "instance"})  # Prometheus adds them to every scraped series
SEVERITIES = {"page", "ticket"}
CLUSTER_AGGREGATIONS = {"max", "min", "absent"}  # the same value on every node: never summed
PROCESS_AGGREGATIONS = {"sum"}  # each HTTP process (and node) counts its own share


class Metric(NamedTuple):
    labels: frozenset[str]
    scope: str  # "cluster" (read from the store), "process" or "instance" (store_up)
    family: str  # the name without its _total/_bucket/... suffix


def _exposed() -> dict[str, Metric]:
    """Every sample name `/metrics` can show, with its labels."""
    exposed: dict[str, Metric] = {}
    for spec in CLUSTER.values():
        labels = frozenset(spec.labels)
        if spec.kind == "counter":
            exposed[spec.name + "_total"] = Metric(labels, "cluster", spec.name)
        elif spec.kind == "histogram":  # buckets only: the store keeps no sum or count
            exposed[spec.name + "_bucket"] = Metric(labels | {"le"}, "cluster", spec.name)
        else:
            exposed[spec.name] = Metric(labels, "cluster", spec.name)
    registry = CollectorRegistry()
    instruments = vars(ProcessMetrics(registry)).values()
    for instrument in instruments:
        names = instrument._labelnames
        if names:  # a labelled instrument has no samples until it has a child
            instrument.labels(*("x" for _ in names))
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):  # not in the multiprocess exposition
                continue
            known = exposed.get(sample.name)
            labels = frozenset(sample.labels) | (known.labels if known else frozenset())
            exposed[sample.name] = Metric(labels, "process", family.name)
    exposed[STORE_UP] = Metric(frozenset(), "instance", STORE_UP)
    return exposed


EXPOSED = _exposed()

# --- reading PromQL ------------------------------------------------------------------------------
METRIC_RE = re.compile(r"\bsluice_[a-z_]+")
SELECTOR_RE = re.compile(r"\s*\{([^}]*)\}")
MATCHER_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
AGGREGATION_RE = re.compile(
    r"\b(sum|min|max|avg|group|stddev|stdvar|count|count_values|bottomk|topk|quantile|absent"
    r"|absent_over_time)\s*(?:(by|without)\s*\(([^)]*)\)\s*)?\("
)
TRAILING_GROUPING_RE = re.compile(r"\s*(by|without)\s*\(([^)]*)\)")
MATCHING_RE = re.compile(r"\b(on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
UNSUPPORTED_RE = re.compile(r"\b(label_replace|label_join)\s*\(")
LEGEND_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
TEMPLATE_LABEL_RE = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")


class Aggregation(NamedTuple):
    op: str
    mode: str | None  # "by", "without" or None (everything aggregated away)
    labels: tuple[str, ...]
    start: int  # the opening parenthesis of its argument
    end: int  # the closing one


def _labels(text: str) -> tuple[str, ...]:
    return tuple(label.strip() for label in text.split(",") if label.strip())


def _closing(expr: str, opening: int) -> int:
    depth = 0
    for i in range(opening, len(expr)):
        if expr[i] == "(":
            depth += 1
        elif expr[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise AssertionError(f"unbalanced parentheses in {expr!r}")


def _aggregations(expr: str) -> list[Aggregation]:
    found = []
    for m in AGGREGATION_RE.finditer(expr):
        opening = m.end() - 1
        end = _closing(expr, opening)
        mode, labels = m.group(2), _labels(m.group(3) or "")
        trailing = TRAILING_GROUPING_RE.match(expr, end + 1)
        if mode is None and trailing is not None:
            mode, labels = trailing.group(1), _labels(trailing.group(2))
        if m.group(1).startswith("absent"):
            mode, labels = "by", ()
        found.append(Aggregation(m.group(1), mode, labels, opening, end))
    return found


def check_expr(expr: str) -> tuple[list[str], set[str]]:
    """What is wrong with `expr`, and the labels its result can have."""
    problems: list[str] = []
    result_labels: set[str] = set()
    if UNSUPPORTED_RE.search(expr):
        problems.append(f"label_replace/label_join: teach this test about them: {expr}")
    aggregations = _aggregations(expr)
    for m in METRIC_RE.finditer(expr):
        name = m.group()
        metric = EXPOSED.get(name)
        if metric is None:
            problems.append(f"{name} is not a metric /metrics exposes")
            continue
        available = set(metric.labels | TARGET_LABELS)
        selector = SELECTOR_RE.match(expr, m.end())
        if selector is not None:
            for label in MATCHER_RE.findall(selector.group(1)):
                if label not in available:
                    problems.append(f"{name} has no label {label!r} (matcher)")
        chain = sorted(
            (a for a in aggregations if a.start < m.start() < a.end), key=lambda a: a.end - a.start
        )
        if metric.scope == "cluster" and (not chain or chain[0].op not in CLUSTER_AGGREGATIONS):
            problems.append(
                f"{name} is a cluster metric (the same on every node): aggregate it with max"
                f" first, not {chain[0].op if chain else 'nothing'}"
            )
        if metric.scope == "process" and chain and chain[0].op not in PROCESS_AGGREGATIONS:
            problems.append(f"{name} is counted per process: aggregate it with sum first")
        for a in chain:
            for label in a.labels:
                if label not in available:
                    problems.append(f"{name} has no label {label!r} here ({a.op} {a.mode})")
            if a.mode == "by":
                available &= set(a.labels)
            elif a.mode == "without":
                available -= set(a.labels)
            else:
                available = set()
        result_labels |= available
    for m in MATCHING_RE.finditer(expr):
        for label in _labels(m.group(2)):
            if label not in result_labels:
                problems.append(f"{m.group(1)}({label}): no side has the label {label!r}")
    return problems, result_labels


# --- the files -----------------------------------------------------------------------------------
def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows, collapsed or not


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _targets() -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in _panels(_dashboard()["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target


def _variables() -> list[dict[str, Any]]:
    return _dashboard()["templating"]["list"]  # type: ignore[no-any-return]


# --- the checker catches what it is meant to -----------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("max by (source) (rate(sluice_event_received_total[5m]))", "not a metric"),
        ("max(sluice_delivery_duration_seconds_count)", "not a metric"),
        ("max by (destination) (rate(sluice_events_received_total[5m]))", "no label 'destination'"),
        ('max(sluice_events_stored_total{kind="track"})', "no label 'kind' (matcher)"),
        ("sum by (source) (rate(sluice_events_received_total[5m]))", "aggregate it with max"),
        ("sluice_destination_lag_seconds > 900", "aggregate it with max"),
        ("sum by (source) (max by (type) (sluice_events_stored_total))", "no label 'source'"),
        ("max(rate(sluice_ingest_responses_total[5m]))", "aggregate it with sum"),
        ("sum(rate(sluice_ingest_responses_total[5m])) by (kind)", "no label 'kind'"),
        ("max(sluice_log_end_position) and on (source) max(sluice_archive_lag_events)", "on("),
    ],
)
def test_the_checker_finds(expr: str, problem: str) -> None:
    problems, _ = check_expr(expr)
    assert any(problem in p for p in problems), problems


def test_the_checker_passes_and_knows_result_labels() -> None:
    expr = (
        "histogram_quantile(0.95, max by (le, destination) (rate(sluice_delivery_duration_seconds"
        '_bucket{job=~"$job", destination=~"$destination"}[5m])))'
        " / on (destination) group_left"
        " sum by (destination) (max by (destination, state) (sluice_destination_retrying_events))"
    )
    problems, labels = check_expr(expr)
    assert problems == []
    assert labels == {"le", "destination"}
    assert check_expr("sluice_metrics_store_up == 0") == ([], set(TARGET_LABELS))


def test_exposed_metrics_include_both_kinds() -> None:
    assert EXPOSED["sluice_ingest_request_duration_seconds_bucket"].labels == {"kind", "le"}
    assert EXPOSED["sluice_ingest_responses_total"].labels == {"status"}
    assert EXPOSED["sluice_store_commit_events_count"].scope == "process"
    assert EXPOSED["sluice_destination_parked_total"].labels == {"destination", "reason"}
    assert "sluice_delivery_duration_seconds_count" not in EXPOSED


# --- the dashboard -------------------------------------------------------------------------------
def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "sluice-overview"
    assert dashboard["schemaVersion"] == 39
    panels = list(_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        pos = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= pos.keys(), panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        targets = panel["targets"]
        assert targets, f"panel {panel['title']!r} has no query"
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target["expr"].strip(), f"panel {panel['title']!r}: empty expr"
            assert "legendFormat" in target, panel["title"]
    titles = {p["title"] for p in panels if p["type"] == "row"}
    assert {"Ingest", "Delivery", "Storage", "Workers"} <= titles


def test_the_dashboard_variables() -> None:
    variables = {v["name"]: v for v in _variables()}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("source", "destination"):
        assert variables[name]["multi"] and variables[name]["includeAll"], name
    used = {
        name
        for _, target in _targets()
        for name in re.findall(r"\$\{?([A-Za-z_]\w*)", target["expr"])
        if not name.startswith("__")
    }
    assert used <= variables.keys(), f"undefined variables: {used - variables.keys()}"


def test_the_dashboard_variables_read_existing_labels() -> None:
    for variable in _variables():
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        m = re.fullmatch(r"label_values\((.+),\s*([A-Za-z_]\w*)\)", query)
        assert m is not None, f"${variable['name']}: expected label_values(metric, label)"
        problems, labels = check_expr(f"max by ({m.group(2)}) ({m.group(1)})")
        assert problems == [], f"${variable['name']}: {problems}"
        assert m.group(2) in labels, variable["name"]


def test_every_dashboard_query_uses_existing_metrics_and_labels() -> None:
    problems = []
    for title, target in _targets():
        found, labels = check_expr(target["expr"])
        problems += [f"{title!r} {target['refId']}: {p}" for p in found]
        for label in LEGEND_RE.findall(target.get("legendFormat", "")):
            if label not in labels:
                problems.append(f"{title!r} {target['refId']}: legend {{{{{label}}}}} is empty")
    assert problems == [], "\n".join(problems)


def test_the_dashboard_shows_every_metric() -> None:
    exprs = " ".join(target["expr"] for _, target in _targets())
    shown = {EXPOSED[name].family for name in METRIC_RE.findall(exprs) if name in EXPOSED}
    missing = {m.family for m in EXPOSED.values()} - shown
    assert not missing, f"metrics no panel shows: {sorted(missing)}"


# --- the alerts ----------------------------------------------------------------------------------
def test_the_alert_rules_are_complete() -> None:
    rules = _alert_rules()
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        name = rule["alert"]
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
        assert re.fullmatch(r"(\d+[smhdwy])+", str(rule["for"])), f"{name}: for {rule['for']!r}"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key, "").strip(), f"{name}: no {key}"


def test_every_alert_uses_existing_metrics_and_labels() -> None:
    problems = []
    for rule in _alert_rules():
        found, labels = check_expr(rule["expr"])
        problems += [f"{rule['alert']}: {p}" for p in found]
        texts = [*rule["annotations"].values(), *rule["labels"].values()]
        for label in TEMPLATE_LABEL_RE.findall(" ".join(str(t) for t in texts)):
            if label not in labels:
                problems.append(f"{rule['alert']}: $labels.{label} is never set")
    assert problems == [], "\n".join(problems)


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file (not the `#` lines of code blocks)."""
    anchors = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6}\s+(.+?)\s*$", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))
    return anchors


def test_runbooks_point_at_sections() -> None:
    missing_files = set()
    problems = []
    for rule in _alert_rules():
        url = rule["annotations"]["runbook_url"]
        m = re.fullmatch(r"(docs/[\w\-/]+\.md)#([\w\-]+)", url)
        assert m is not None, f"{rule['alert']}: runbook_url {url!r} is not docs/<file>.md#<anchor>"
        path = ROOT / m.group(1)
        if not path.exists():
            missing_files.add(m.group(1))
            continue
        if m.group(2) not in _anchors(path.read_text()):
            problems.append(f"{rule['alert']}: {m.group(1)} has no section #{m.group(2)}")
    assert problems == [], "\n".join(problems)
    if missing_files:
        pytest.skip(f"not written yet: {sorted(missing_files)}")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
