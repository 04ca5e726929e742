"""`/reports/reconciliation[/{id}[.csv]]` on both databases: tabs with counts, filter by
category, paging, the CSV, and the `/insights` page's figures equal the JSON."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.insights.conftest import InsightsKit
from wizesync.db import reconcile_repo
from wizesync.db.reconcile_models import CATEGORIES

HTML = {"Accept": "text/html"}
PLANTED = {
    "missing_in_ghl": 3,
    "missing_in_wizehire": 2,
    "currency_mismatch": 1,
    "amount_mismatch": 1,
    "refund_mismatch": 0,
    "status_mismatch": 1,
    "fulfillment_missing": 2,
    "matched": 130,
}


async def _plant_run(kit: InsightsKit) -> int:
    now = datetime.now(UTC)
    items = []
    for category, n in PLANTED.items():
        for i in range(n):
            items.append(
                {
                    "order_key": f"wh:{category}:{i}",
                    "category": category,
                    "wizehire_order_id": f"wh_ord_{category}_{i}",
                    "ghl_order_id": None,
                    "ghl_location_id": None,
                    "detail": f"{category} number {i} <b>escaped</b>",
                    "wizehire": {
                        "amount": "149.00",
                        "currency": "USD",
                        "status": "paid",
                        "payment_status": "paid",
                        "amount_refunded": "0",
                    },
                    "ghl": None,
                    "healed": category == "missing_in_ghl",
                }
            )
    async with kit.sessionmaker() as session, session.begin():
        run = await reconcile_repo.create_run(
            session,
            trigger="manual",
            since=now - timedelta(days=7),
            until=now,
            heal=True,
            owner="t",
            lease_seconds=60,
        )
        assert run is not None
        await reconcile_repo.add_items(session, run, items)
        await reconcile_repo.finish_run(
            session,
            run,
            owner="t",
            status="done",
            counts=await reconcile_repo.count_items(session, run),
        )
    return run


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-category="([a-z_]+)">', html)


@pytest.mark.empty_sandbox
async def test_report_page_tabs_filter_and_pages(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    run = await _plant_run(kit)
    page = await kit.client.get(f"/reports/reconciliation/{run}", headers=kit.bearer)
    assert page.status_code == 200
    for category in CATEGORIES:
        tab = re.search(
            rf'data-category="{category}"[^>]*>{category} <span class="count">'
            rf"(\d+)</span>",
            page.text,
        )
        assert tab and int(tab.group(1)) == PLANTED[category], category
    assert len(_rows(page.text)) == 100  # the first page
    assert "<b>escaped</b>" not in page.text and "&lt;b&gt;escaped&lt;/b&gt;" in page.text
    following = re.search(r'<a rel="next" href="([^"]+)"', page.text)
    assert following
    rest = await kit.client.get(following.group(1).replace("&amp;", "&"), headers=kit.bearer)
    assert len(_rows(rest.text)) == sum(PLANTED.values()) - 100
    assert 'rel="next"' not in rest.text
    filtered = await kit.client.get(
        f"/reports/reconciliation/{run}",
        params={"category": "fulfillment_missing"},
        headers=kit.bearer,
    )
    assert _rows(filtered.text) == ["fulfillment_missing"] * 2
    bad = await kit.client.get(
        f"/reports/reconciliation/{run}", params={"category": "nope"}, headers=kit.bearer
    )
    assert bad.status_code == 422
    missing = await kit.client.get("/reports/reconciliation/999999", headers=kit.bearer)
    assert missing.status_code == 404
    runs = await kit.client.get("/reports/reconciliation", headers=kit.bearer)
    assert f'href="/reports/reconciliation/{run}"' in runs.text


@pytest.mark.empty_sandbox
async def test_report_csv_has_every_item_once(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    run = await _plant_run(kit)
    response = await kit.client.get(f"/reports/reconciliation/{run}.csv", headers=kit.bearer)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == sum(PLANTED.values())
    assert len({r["wizehire_order_id"] for r in rows}) == len(rows)
    assert {c: sum(1 for r in rows if r["category"] == c) for c in CATEGORIES} == PLANTED
    healed = [r for r in rows if r["healed"] == "true"]
    assert {r["category"] for r in healed} == {"missing_in_ghl"}
    assert rows[0]["wizehire_amount"] == "149.00"


async def test_insights_page_shows_the_jsons_figures(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    run = await _plant_run(kit)
    params = {
        "since": (datetime.now(UTC) - timedelta(days=2)).date().isoformat(),
        "until": (kit.sb.clock.now() + timedelta(days=2)).date().isoformat(),
        "currency": "USD",
    }
    body = (await kit.client.get("/insights/revenue", params=params, headers=kit.bearer)).json()
    page = await kit.client.get("/insights", params=params, headers={**HTML, **kit.bearer})
    assert page.status_code == 200
    shown = dict(re.findall(r'data-figure="([a-z_.]+)">([^<]*)<', page.text))
    for section in ("totals", "subscriptions", "unreconciled"):
        for key, value in body[section].items():
            assert shown[f"{section}.{key}"] == str(value), (section, key)
    assert body["unreconciled"]["orders"] == sum(n for c, n in PLANTED.items() if c != "matched")
    assert f'href="/reports/reconciliation/{run}?category=missing_in_ghl"' in page.text
    for row in body["by_product"]:
        cells = re.search(rf'<tr data-key="{row["sku"] or ""}">(.*?)</tr>', page.text, re.S)
        assert cells, row
        assert re.findall(r'<td class="num"[^>]*>([^<]*)</td>', cells.group(1)) == [
            row["gross"],
            row["refunds"],
            row["net"],
            str(row["orders"]),
        ]
    assert "<svg" in page.text and 'class="net"' in page.text
    for period in body["series"]:
        if period["gross"] != "0.00":
            assert f"{period['period']} gross: {period['gross']} USD" in page.text


async def test_insights_page_explains_a_bad_filter(insights_kit: InsightsKit) -> None:
    page = await insights_kit.client.get(
        "/insights", params={"interval": "hour"}, headers={**HTML, **insights_kit.bearer}
    )
    assert page.status_code == 422
    assert "query.interval" in page.text and "<form" in page.text


@pytest.mark.empty_sandbox
async def test_without_ghl_the_api_is_503_and_the_page_says_so(insights_kit: InsightsKit) -> None:
    from wizesync.insights.routes import get_insights

    kit = insights_kit
    kit.app.dependency_overrides[get_insights] = lambda: None
    api = await kit.client.get("/insights/revenue", headers=kit.bearer)
    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    page = await kit.client.get("/insights", headers={**HTML, **kit.bearer})
    assert page.status_code == 503
    assert "GHL is not configured" in page.text and "<form" in page.text


@pytest.mark.empty_sandbox
async def test_no_payments_means_zero_figures_over_the_default_30_days(
    insights_kit: InsightsKit,
) -> None:
    body = (await insights_kit.client.get("/insights/revenue", headers=insights_kit.bearer)).json()
    assert body["totals"] == {"gross": "0.00", "refunds": "0.00", "net": "0.00", "orders": 0}
    assert body["currency"] == "USD" and len(body["series"]) == 30
    assert body["unreconciled"] == {"orders": 0, "amount": "0.00"}


async def test_the_currency_asked_for_stays_selectable(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    params = {
        "since": (datetime.now(UTC) - timedelta(days=2)).date().isoformat(),
        "until": (kit.sb.clock.now() + timedelta(days=2)).date().isoformat(),
    }
    page = await kit.client.get(
        "/insights", params={**params, "currency": "gbp"}, headers={**HTML, **kit.bearer}
    )
    assert page.status_code == 200
    options = re.findall(r'<option value="([A-Z]{3})"( selected)?>', page.text)
    assert options[0] == ("GBP", " selected")
    assert {code for code, _ in options} == {"GBP", "USD", "EUR"}
    assert 'data-figure="totals.gross">0.00<' in page.text
