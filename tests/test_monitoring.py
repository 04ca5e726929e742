"""Monitoring that ships: the alert rules load and behave (promtool), every metric the rules and the
Grafana dashboard name is in the service's real /metrics, the database-backed gauges follow the
database, and /metrics can require METRICS_TOKEN."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings
from tests.support.ops_kit import metric_value, order_event, post_wizehire
from tests.support.waiting import wait_for_status
from tests.test_ops import ok_and_dying_registry
from wizesync.db import install_repo, poller_repo
from wizesync.db.base import utcnow
from wizesync.ops import metrics

ROOT = Path(__file__).parents[1]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "wizesync.json"
NAME = re.compile(r"\bwizesync_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
}


def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip(
            "promtool is not installed (Debian: apt-get install prometheus; or set "
            "PROMTOOL); the metric-name check below still runs"
        )
    return found


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    def walk(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["expr"]] if isinstance(node.get("expr"), str) else []
            return found + [e for value in node.values() for e in walk(value)]
        if isinstance(node, list):
            return [e for item in node for e in walk(item)]
        return []

    return walk(json.loads(DASHBOARD.read_text()))


def exported_names(text: str) -> set[str]:
    """Every series name the exposition can produce, children or not (a labelled metric with no
    child yet still has its HELP/TYPE lines)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def test_promtool_accepts_the_rules() -> None:
    tool = promtool()
    done = subprocess.run(
        [tool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_promtool_accepts_the_example_scrape_configuration() -> None:
    tool = promtool()
    config = RULES.parent / "prometheus.yml"
    done = subprocess.run(
        [tool, "check", "config", "--syntax-only", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_fire_on_their_series_and_not_before() -> None:
    tool = promtool()
    done = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_cover_what_operators_must_hear_about() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert {
        "WizesyncDeadLettersGrowing",
        "WizesyncQueueBacklog",
        "WizesyncPollerStale",
        "WizesyncGhlNeedsReauth",
        "WizesyncGhlRateLimited",
        "WizesyncReconciliationMismatches",
    } <= set(alerts)
    for rule in alerts.values():
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["labels"]["severity"] in ("warning", "critical")


async def test_every_metric_the_rules_and_dashboard_use_is_exported(client_factory) -> None:
    client = await client_factory()
    text = (await client.get("/metrics")).text
    exported = exported_names(text)
    used = {
        name for expr in rule_expressions() + dashboard_expressions() for name in NAME.findall(expr)
    }
    assert len(used) >= 20
    assert used - exported == set()


def test_the_dashboard_is_importable_grafana_json() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "wizesync" and dash["panels"]
    assert dash["__inputs"][0]["name"] == "DS_PROMETHEUS"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]


# --- the gauges read from the database ------------------------------------------------------------


async def test_flow_install_and_poller_gauges_follow_the_database(
    client_factory, settings, sessionmaker
) -> None:
    client = await client_factory(registry=ok_and_dying_registry())
    event_id = (await post_wizehire(client, order_event())).json()["id"]

    await wait_for_status(client, event_id, "done")
    async with sessionmaker.begin() as session:
        await install_repo.upsert_location(
            session, location_id="LocReauth0000000000a", company_id=None, tokens=None
        )
        await install_repo.upsert_location(
            session, location_id="LocFine00000000000000", company_id=None, tokens=None
        )
        row = await install_repo.get_installation(session, "LocReauth0000000000a")
        assert row is not None
        await install_repo.mark_needs_reauth(session, [row.id], "invalid_grant")
        lease = await poller_repo.acquire_lease(
            session, "LocFine00000000000000", owner="t", lease_seconds=60
        )
        assert lease is not None
        assert await poller_repo.finish_run(
            session,
            "LocFine00000000000000",
            owner="t",
            started_at=utcnow() - timedelta(seconds=5),
            counts={},
            error=None,
        )
    text = (await client.get("/metrics")).text
    flow = "wizehire:order.created"
    assert metric_value(text, "wizesync_flow_events_24h", flow=flow, outcome="success") == 1
    assert metric_value(text, "wizesync_flow_events_24h", flow=flow, outcome="failure") == 0
    last = metric_value(text, "wizesync_flow_last_success_timestamp_seconds", flow=flow)
    assert abs(last - utcnow().timestamp()) < 60
    assert metric_value(text, "wizesync_ghl_needs_reauth", location_id="LocReauth0000000000a") == 1
    assert metric_value(text, "wizesync_ghl_needs_reauth", location_id="LocFine00000000000000") == 0
    polled = metric_value(
        text, "wizesync_poller_last_success_timestamp_seconds", location_id="LocFine00000000000000"
    )
    assert abs(polled - utcnow().timestamp()) < 60

    # A minute's cache on the per-flow counts (they aggregate the whole attempt log); the queue
    # is fresh on every scrape.
    second = (await post_wizehire(client, order_event())).json()["id"]

    await wait_for_status(client, second, "done")
    text = (await client.get("/metrics")).text
    assert metric_value(text, "wizesync_queue_events", status="done") == 2
    assert metric_value(text, "wizesync_flow_events_24h", flow=flow, outcome="success") == 1


def test_reconciliation_counts_set_every_category_and_zero_the_absent() -> None:
    metrics.set_reconciliation_counts({"matched": 10, "amount_mismatch": 2}, finished_at=1e9)
    metrics.set_reconciliation_counts({"matched": 12})

    def value(category: str) -> float:
        return metrics.RECONCILIATION_ITEMS.labels(category=category)._value.get()

    assert value("matched") == 12
    assert value("amount_mismatch") == 0
    assert value("missing_in_ghl") == 0
    assert metrics.RECONCILIATION_FINISHED._value.get() == 1e9


# --- METRICS_TOKEN -------------------------------------------------------------------------------


async def test_metrics_require_the_token_when_one_is_set(client_factory, settings) -> None:
    token = "m" * 8 + "etrics-token-for-the-test-0123456789"
    client = await client_factory(
        make_settings(settings.database_url, worker="off", metrics_token=token)
    )
    refused = await client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert "METRICS_TOKEN" in refused.json()["detail"]
    wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    answered = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert answered.status_code == 200
    assert "wizesync_queue_events" in answered.text


async def test_metrics_are_open_without_a_token(client_factory, settings) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    assert (await client.get("/metrics")).status_code == 200
