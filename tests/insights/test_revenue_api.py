"""`/insights/revenue` and `.csv` against a sandbox GHL with a varied history, on both databases:
the figures equal sums computed straight from the sandbox's transactions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.insights.conftest import InsightsKit
from tests.insights.seed import (
    SECOND_LOCATION_ID,
    expected_by_location,
    expected_currency_counts,
    expected_subscriptions,
    expected_totals,
)
from wizesync.db import reconcile_repo
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID

LOCATIONS = [DEFAULT_LOCATION_ID, SECOND_LOCATION_ID]


def _window(kit: InsightsKit) -> tuple[str, str]:
    """A window holding everything planted (the sandbox clock ran ahead by ~10 days)."""
    start = datetime.now(UTC) - timedelta(days=2)
    end = kit.sb.clock.now() + timedelta(days=2)
    return _iso(start), _iso(end)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def _revenue(kit: InsightsKit, **params: str) -> dict:
    response = await kit.client.get("/insights/revenue", params=params, headers=kit.bearer)
    assert response.status_code == 200, response.text
    return response.json()


async def test_totals_equal_the_sandbox_transactions_in_each_currency(
    insights_kit: InsightsKit,
) -> None:
    kit = insights_kit
    since, until = _window(kit)
    ghl = kit.ghl()
    for currency in ("USD", "EUR"):
        body = await _revenue(kit, since=since, until=until, currency=currency)
        want = expected_totals(ghl, LOCATIONS, currency, since, until)
        assert body["currency"] == currency
        assert {k: (Decimal(v) if k != "orders" else v) for k, v in body["totals"].items()} == want
        # Series, products and locations each add up to the totals, to the cent.
        for part in ("series", "by_product", "by_location"):
            assert sum(Decimal(r["gross"]) for r in body[part]) == want["gross"], part
            assert sum(Decimal(r["refunds"]) for r in body[part]) == want["refunds"], part
            assert sum(Decimal(r["net"]) for r in body[part]) == want["net"], part
        by_location = {r["location_id"]: r for r in body["by_location"]}
        for loc, figures in expected_by_location(ghl, LOCATIONS, currency, since, until).items():
            if figures["orders"] == 0:
                assert loc not in by_location
                continue
            assert Decimal(by_location[loc]["gross"]) == figures["gross"]
            assert Decimal(by_location[loc]["refunds"]) == figures["refunds"]
            assert by_location[loc]["orders"] == figures["orders"]


async def test_failed_payments_never_count_and_refunds_are_the_amount_refunded(
    insights_kit: InsightsKit,
) -> None:
    kit = insights_kit
    since, until = _window(kit)
    body = await _revenue(kit, since=since, until=until, currency="USD")
    txns = [t for t in kit.ghl()["transactions"] if t["currency"] == "USD"]
    failed = sum(Decimal(str(t["amount"])) for t in txns if t["status"] == "failed")
    everything = sum(Decimal(str(t["amount"])) for t in txns)
    assert failed > 0  # the history has failed payments...
    assert Decimal(body["totals"]["gross"]) == everything - failed  # ...and none counts
    # 49.50 partial + 149.00 full (status "refunded") + 0.01 on the second location.
    assert Decimal(body["totals"]["refunds"]) == Decimal("198.51")


async def test_default_currency_is_the_most_used(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    since, until = _window(kit)
    counts = expected_currency_counts(kit.ghl(), LOCATIONS)
    assert len(counts) == 2
    body = await _revenue(kit, since=since, until=until)
    assert body["currency"] == max(counts, key=lambda c: counts[c])


async def test_by_product_follows_the_mapping_and_splits_mixed_orders(
    insights_kit: InsightsKit,
) -> None:
    kit = insights_kit
    since, until = _window(kit)
    body = await _revenue(kit, since=since, until=until, currency="USD")
    by_sku = {r["sku"]: r for r in body["by_product"]}
    # The mixed order: 149.00 of JOB-BOOST-30 and 2 x 51.00 of a product no SKU maps to.
    assert by_sku[None] == {
        "sku": None,
        "gross": "102.00",
        "refunds": "0.00",
        "net": "102.00",
        "orders": 1,
    }
    # Boosts: 149 + 298 + 149 (partial) + 149 (mixed) + 149 (fully refunded); failed: none.
    assert by_sku["JOB-BOOST-30"]["gross"] == "894.00"
    assert by_sku["JOB-BOOST-30"]["refunds"] == "198.50"
    assert by_sku["JOB-BOOST-30"]["orders"] == 5
    # The plan: its first payment and two successful renewals (the failed one does not count),
    # one order; the cancelled plan's first payment is a second order.
    assert by_sku["HIRING-PLAN-MONTHLY"]["gross"] == "396.00"
    assert by_sku["HIRING-PLAN-MONTHLY"]["orders"] == 2


async def test_subscriptions_are_active_ones_normalised_to_a_month(
    insights_kit: InsightsKit,
) -> None:
    kit = insights_kit
    since, until = _window(kit)
    body = await _revenue(kit, since=since, until=until, currency="USD")
    active, mrr = expected_subscriptions(kit.ghl(), LOCATIONS, "USD")
    # Monthly 99 + yearly 1200/12 + every 2 weeks 10 x 52/12 / 2 (the cancelled one is out).
    assert active == 3
    assert mrr == Decimal("220.67")
    assert body["subscriptions"] == {"active": active, "mrr": str(mrr)}


async def test_series_is_split_by_utc_period_and_lists_empty_periods(
    insights_kit: InsightsKit,
) -> None:
    kit = insights_kit
    since, until = _window(kit)
    days = await _revenue(kit, since=since, until=until, currency="USD", interval="day")
    weeks = await _revenue(kit, since=since, until=until, currency="USD", interval="week")
    months = await _revenue(kit, since=since, until=until, currency="USD", interval="month")
    assert len(days["series"]) >= 14  # every day of the window, empty ones as zeros
    assert sum(1 for p in days["series"] if p["gross"] != "0.00") == 4  # days 0, 1, 9, 10
    for body in (days, weeks, months):
        assert sum(Decimal(p["gross"]) for p in body["series"]) == Decimal(body["totals"]["gross"])
    for p in weeks["series"]:
        assert datetime.fromisoformat(p["period"]).weekday() == 0  # weeks start on Monday
    for p in months["series"]:
        assert p["period"].endswith("-01")
    planted_day = kit.ghl()["transactions"][0]["createdAt"][:10]
    assert any(p["period"] == planted_day and p["gross"] != "0.00" for p in days["series"])


async def test_the_window_cuts_transactions_exactly(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    txns = sorted(
        (
            t
            for t in kit.ghl()["transactions"]
            if t["currency"] == "USD" and t["status"] == "succeeded"
        ),
        key=lambda t: t["createdAt"],
    )
    # Start exactly at a transaction (included) and end exactly at a later one (excluded).
    since, until = txns[2]["createdAt"], txns[-1]["createdAt"]
    body = await _revenue(kit, since=since, until=until, currency="USD")
    want = expected_totals(kit.ghl(), LOCATIONS, "USD", since, until)
    assert Decimal(body["totals"]["gross"]) == want["gross"]
    assert body["totals"]["orders"] == want["orders"]


async def test_csv_equals_json(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    since, until = _window(kit)
    params = {"since": since, "until": until, "currency": "USD", "interval": "week"}
    body = await _revenue(kit, **params)
    response = await kit.client.get("/insights/revenue.csv", params=params, headers=kit.bearer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["currency"] for r in rows} == {"USD"} and {r["interval"] for r in rows} == {"week"}

    def figures(row: dict) -> dict:
        return {
            "gross": row["gross"],
            "refunds": row["refunds"],
            "net": row["net"],
            "orders": int(row["orders"]),
        }

    sections: dict[str, list[dict]] = {}
    for row in rows:
        sections.setdefault(row["section"], []).append(row)
    assert figures(sections["totals"][0]) == body["totals"]
    assert [{"period": r["key"], **figures(r)} for r in sections["series"]] == body["series"]
    assert [{"sku": r["key"] or None, **figures(r)} for r in sections["by_product"]] == body[
        "by_product"
    ]
    assert [{"location_id": r["key"], **figures(r)} for r in sections["by_location"]] == body[
        "by_location"
    ]
    sub = sections["subscriptions"][0]
    assert {"active": int(sub["active"]), "mrr": sub["mrr"]} == body["subscriptions"]
    unrec = sections["unreconciled"][0]
    assert {"orders": int(unrec["orders"]), "amount": unrec["amount"]} == body["unreconciled"]


async def test_unreconciled_is_the_last_finished_runs_open_orders(
    insights_kit: InsightsKit,
) -> None:
    kit = insights_kit
    now = datetime.now(UTC)
    async with kit.sessionmaker() as session, session.begin():
        old = await reconcile_repo.create_run(
            session, trigger="manual", since=now, until=now, heal=False, owner="t", lease_seconds=60
        )
        await reconcile_repo.add_items(
            session, old, [_item("wh:old", "missing_in_ghl", wizehire=("999.00", "USD"))]
        )
        await reconcile_repo.finish_run(session, old, owner="t", status="done")
    async with kit.sessionmaker() as session, session.begin():
        run = await reconcile_repo.create_run(
            session, trigger="manual", since=now, until=now, heal=False, owner="t", lease_seconds=60
        )
        await reconcile_repo.add_items(
            session,
            run,
            [
                _item("wh:1", "missing_in_ghl", wizehire=("149.00", "USD")),
                _item("ghl:a", "missing_in_wizehire", ghl=("51.25", "USD")),
                _item("wh:2", "amount_mismatch", wizehire=("100.00", "USD"), ghl=("90.00", "USD")),
                _item("wh:3", "currency_mismatch", wizehire=("80.00", "EUR"), ghl=("80.00", "USD")),
                _item("wh:4", "refund_mismatch", wizehire=("70.00", "EUR"), ghl=("70.00", "EUR")),
                _item("wh:5", "matched", wizehire=("500.00", "USD"), ghl=("500.00", "USD")),
            ],
        )
        await reconcile_repo.finish_run(session, run, owner="t", status="done")
    # A newer run still running is not "the last reconciliation run".
    async with kit.sessionmaker() as session, session.begin():
        running = await reconcile_repo.create_run(
            session, trigger="manual", since=now, until=now, heal=False, owner="t", lease_seconds=60
        )
        await reconcile_repo.add_items(
            session, running, [_item("wh:9", "missing_in_ghl", wizehire=("1.00", "USD"))]
        )
    since, until = _window(kit)
    usd = await _revenue(kit, since=since, until=until, currency="USD")
    eur = await _revenue(kit, since=since, until=until, currency="EUR")
    # GHL's side when in the currency, else Wizehire's: 149 + 51.25 + 90 + 80.
    assert usd["unreconciled"] == {"orders": 4, "amount": "370.25"}
    # A currency mismatch has a side in each currency: it is open in both answers.
    assert eur["unreconciled"] == {"orders": 2, "amount": "150.00"}


def _item(
    key: str,
    category: str,
    *,
    wizehire: tuple[str, str] | None = None,
    ghl: tuple[str, str] | None = None,
) -> dict:
    return {
        "order_key": key,
        "category": category,
        "detail": "planted by the test",
        "wizehire_order_id": key if key.startswith("wh:") else None,
        "ghl_order_id": key if key.startswith("ghl:") else None,
        "ghl_location_id": DEFAULT_LOCATION_ID,
        "wizehire": {
            "amount": wizehire[0],
            "currency": wizehire[1],
            "status": "paid",
            "payment_status": "paid",
            "amount_refunded": "0",
        }
        if wizehire
        else None,
        "ghl": {
            "amount": ghl[0],
            "currency": ghl[1],
            "payment_status": "paid",
            "amount_refunded": "0",
            "fulfilled": True,
        }
        if ghl
        else None,
    }


async def test_invalid_queries_are_422_problems_naming_the_field(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    for params, loc in (
        ({"since": "yesterday"}, "query.since"),
        ({"until": "2026-13-01"}, "query.until"),
        ({"interval": "hour"}, "query.interval"),
        ({"currency": "US"}, "query.currency"),
        ({"since": "2026-11-02", "until": "2026-11-01"}, "query.since"),
        ({"since": "2000-01-01", "until": "2026-01-01"}, "query.interval"),
    ):
        response = await kit.client.get("/insights/revenue", params=params, headers=kit.bearer)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["loc"] for e in response.json()["errors"]] == [loc]


async def test_ghl_outage_is_a_503_with_retry_after(insights_kit: InsightsKit) -> None:
    kit = insights_kit
    fault = await kit.control.post(
        "/_sandbox/faults",
        json={"path": "/ghl/payments/transactions", "method": "GET", "status": 503},
    )
    assert fault.status_code == 201, fault.text
    response = await kit.client.get(
        "/insights/revenue", params={"since": "2026-01-01"}, headers=kit.bearer
    )
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert "GHL" in response.json()["detail"]
