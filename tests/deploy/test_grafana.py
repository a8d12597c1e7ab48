"""The Grafana dashboard (deploy/grafana/sigw.json): every panel reads the Prometheus data source the importer
picks, every query is PromQL the real tool (Debian's promtool) parses, and every series it names is one a real
gateway's /metrics exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.supervisor import ProcessFigures
from tests.conftest import Demo
from tests.deploy.test_prometheus import promtool

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "sigw.json"
DATA_SOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's own variables, as a query sees them once Grafana has put in their values.
BUILT_IN = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}
# What PromQL names that is not a series: functions and aggregations (followed by "("), keywords, label lists.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels(within: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, also those in a collapsed row."""
    for panel in within:
        yield panel
        yield from panels(panel.get("panels", []))


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title and refId, expr) of every panel's targets."""
    return [
        (f"{panel['title']} {target['refId']}", target["expr"])
        for panel in panels(board["panels"])
        for target in panel.get("targets", [])
    ]


def concrete(expr: str, variables: set[str]) -> str:
    """``expr`` as Prometheus gets it: the dashboard's variables as a regex matching any value (they are used in
    ``=~`` matchers), Grafana's own ones as a duration."""
    for name, value in BUILT_IN.items():
        expr = expr.replace(name, value)
    for name in variables:
        expr = expr.replace(f"${{{name}}}", ".*").replace(f"${name}", ".*")
    return expr


def series_named(expr: str) -> set[str]:
    """The metric names ``expr`` selects: what is left once strings, label matchers, ranges and label lists are
    taken out, and functions, keywords and numbers are set aside."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", bare):
        name, call = match.groups()
        if not call and name not in KEYWORDS and not re.fullmatch(r"[0-9.e+-]+|Inf|NaN", name, re.IGNORECASE):
            names.add(name)
    return names


def exported(exposition: str) -> set[str]:
    """The series names an exposition offers, also for a family that has no sample yet (a labelled counter before
    its first increment): a counter's ``_total``, a histogram's ``_bucket``, ``_sum`` and ``_count``."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {s.name for s in family.samples if not s.name.endswith("_created")}
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


@pytest.fixture
async def exports(demo: Demo) -> set[str]:
    """What a real gateway's /metrics exports, with what only ``sigw serve``'s supervisor adds (its process
    figures, from its own collector)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{demo.gateway.http_port}/metrics") as reply,
    ):
        text = await reply.text()
    supervisor = CollectorRegistry()
    supervisor.register(ProcessFigures([]))
    return exported(text) | exported(generate_latest(supervisor).decode())


def test_the_dashboard_is_a_grafana_model_on_a_chosen_prometheus() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39 and board["uid"] == "sigw"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    every = list(panels(board["panels"]))
    assert len({p["id"] for p in every}) == len(every), "panel ids repeat"
    for panel in every:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATA_SOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATA_SOURCE, panel["title"]


def test_every_query_is_promql_that_promtool_parses(tmp_path: Path) -> None:
    board = dashboard()
    variables = {v["name"] for v in board["templating"]["list"]}
    found = queries(board)
    assert len(found) > 30
    rules: list[dict[str, str]] = []
    for where, expr in found:
        query = concrete(expr, variables)
        assert "$" not in query, f"{where}: a variable the dashboard does not define in {expr!r}"
        rules.append({"record": f"grafana:query_{len(rules)}", "expr": query})
    # JSON is YAML: the queries as recording rules, which promtool parses (and names by their index if one fails).
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "grafana", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    failing = "\n".join(f"grafana:query_{i}: {where}" for i, (where, _) in enumerate(found))
    assert checked.returncode == 0, checked.stdout + checked.stderr + "\nqueries by index:\n" + failing
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


async def test_every_series_the_dashboard_names_is_exported(exports: set[str]) -> None:
    board = dashboard()
    variables = {v["name"] for v in board["templating"]["list"]}
    named = {name: where for where, expr in queries(board) for name in series_named(concrete(expr, variables))}
    named |= {
        re.findall(r"label_values\((\w+)", v["definition"])[0]: f"variable {v['name']}"
        for v in board["templating"]["list"]
        if v["type"] == "query"
    }
    assert {"sigw_settlements_total", "grpc_server_handling_seconds_bucket", "sigw_process_up"} <= set(named)
    missing = {name: where for name, where in named.items() if name not in exports}
    assert not missing, f"the dashboard names series no gateway exports: {missing}"
