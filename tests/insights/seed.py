"""A varied GHL history planted through the sandbox's control plane, and the revenue figures
computed from the sandbox's raw transactions independently of `wizesync.insights`.

`plant(control, prefix)` works on any sandbox: in-process (`prefix=""`) or the development
sandbox inside a running service (`prefix="/sandbox"`). What it plants, on the default location
and (when `second_location`) on a second one:
- one-time orders paid in full, an order of two units, an order of a mapped and an unmapped
  product together (split by line amount), a failed payment (must not count), a partial refund,
  a full refund (status set to `refunded`), a EUR order and a partially refunded EUR order;
- a monthly plan (subscription, renewed once: the renewal belongs to the first order), a yearly
  plan on the second location (MRR = 1/12), and a cancelled subscription (not active);
- payments spread over several days (the sandbox's clock moves forward between them).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx

from wizesync_sandbox.defaults import (
    BOOST_PRICE_ID,
    BOOST_PRODUCT_ID,
    DEFAULT_LOCATION_ID,
    PLAN_PRICE_ID,
    PLAN_PRODUCT_ID,
)

SECOND_LOCATION_ID = "SandboxLocation00002"
CAPTURED = {"succeeded", "refunded", "partially_refunded"}
DAY = 86400


class Planted:
    def __init__(self) -> None:
        self.skus: dict[str, dict[str, str]] = {
            "JOB-BOOST-30": {"price_id": BOOST_PRICE_ID, "product_id": BOOST_PRODUCT_ID},
            "HIRING-PLAN-MONTHLY": {"price_id": PLAN_PRICE_ID, "product_id": PLAN_PRODUCT_ID},
        }
        self.locations = [DEFAULT_LOCATION_ID]


async def plant(
    control: httpx.AsyncClient, prefix: str = "", *, second_location: bool = True
) -> Planted:
    planted = Planted()
    base = f"{prefix}/_sandbox/ghl"

    async def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await control.post(base + path, json=body or {})
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        return response.json()

    async def product(
        location: str, name: str, amount: str, currency: str = "USD", **price: Any
    ) -> dict[str, str]:
        made = await post(
            "/products",
            {
                "location_id": location,
                "name": name,
                "prices": [{"amount": amount, "currency": currency, **price}],
            },
        )
        return {"price_id": made["prices"][0]["_id"], "product_id": made["product"]["_id"]}

    async def checkout(
        location: str, lines: list[tuple[str, int]], outcome: str = "paid"
    ) -> dict[str, Any]:
        return await post(
            "/checkout",
            {
                "location_id": location,
                "outcome": outcome,
                "items": [{"price_id": p, "qty": q} for p, q in lines],
            },
        )

    async def advance(days: float) -> None:
        response = await control.post(
            f"{prefix}/_sandbox/clock", json={"advance_seconds": days * DAY}
        )
        assert response.status_code == 200, response.text

    loc = DEFAULT_LOCATION_ID
    eur = await product(loc, "Job ad boost (EU)", "80.00", "EUR")
    planted.skus["JOB-BOOST-EU"] = eur
    unmapped = await product(loc, "Something GHL sells alone", "51.00")

    # Day 0: a paid boost, two units, a failed payment, the monthly plan.
    await checkout(loc, [(BOOST_PRICE_ID, 1)])
    await checkout(loc, [(BOOST_PRICE_ID, 2)])
    await checkout(loc, [(BOOST_PRICE_ID, 1)], outcome="failed")
    plan = await checkout(loc, [(PLAN_PRICE_ID, 1)])
    cancelled = await checkout(loc, [(PLAN_PRICE_ID, 1)])
    await post(f"/subscriptions/{cancelled['subscription']['_id']}/cancel")
    await advance(1)
    # Day 1: a partial refund, a mixed order (mapped + unmapped product), a EUR order.
    partial = await checkout(loc, [(BOOST_PRICE_ID, 1)])
    await post("/refunds", {"transaction_id": partial["transaction"]["_id"], "amount": "49.50"})
    await checkout(loc, [(BOOST_PRICE_ID, 1), (unmapped["price_id"], 2)])
    await checkout(loc, [(eur["price_id"], 1)])
    await advance(8)
    # Day 9: a full refund with the status GHL may set, a partially refunded EUR order, the
    # plan's renewal (a transaction of the subscription, belonging to the plan's order).
    full = await checkout(loc, [(BOOST_PRICE_ID, 1)])
    await post("/refunds", {"transaction_id": full["transaction"]["_id"], "status": "refunded"})
    eur_refunded = await checkout(loc, [(eur["price_id"], 2)])
    await post(
        "/refunds",
        {
            "transaction_id": eur_refunded["transaction"]["_id"],
            "amount": "12.34",
            "status": "partially_refunded",
        },
    )
    await post(f"/subscriptions/{plan['subscription']['_id']}/renew", {"outcome": "succeeded"})
    await post(f"/subscriptions/{plan['subscription']['_id']}/renew", {"outcome": "failed"})
    await post(f"/subscriptions/{plan['subscription']['_id']}/renew", {"outcome": "succeeded"})

    if second_location:
        await post("/locations", {"id": SECOND_LOCATION_ID, "name": "Second Co.", "pit": True})
        planted.locations.append(SECOND_LOCATION_ID)
        other = await product(SECOND_LOCATION_ID, "Featured listing", "250.00")
        yearly = await product(
            SECOND_LOCATION_ID, "Annual plan", "1200.00", type="recurring", interval="year"
        )
        weekly = await product(
            SECOND_LOCATION_ID,
            "Weekly plan",
            "10.00",
            type="recurring",
            interval="week",
            interval_count=2,
        )
        planted.skus["FEATURED"] = other
        planted.skus["ANNUAL"] = yearly
        planted.skus["BIWEEKLY"] = weekly
        await checkout(SECOND_LOCATION_ID, [(other["price_id"], 1)])
        await checkout(SECOND_LOCATION_ID, [(yearly["price_id"], 1)])
        await checkout(SECOND_LOCATION_ID, [(weekly["price_id"], 1)])
        await advance(1)
        refunded = await checkout(SECOND_LOCATION_ID, [(other["price_id"], 1)])
        await post("/refunds", {"transaction_id": refunded["transaction"]["_id"], "amount": "0.01"})
    return planted


# --- the expected figures, from the raw sandbox data ---------------------------------------------


def expected_totals(
    ghl: dict[str, Any], locations: list[str], currency: str, since: str, until: str
) -> dict[str, Any]:
    """Totals from the sandbox's transactions: captured, in the currency, created in
    [since, until) (ISO strings compare in order: the sandbox writes one format)."""
    subs = {s["_id"]: s for s in ghl["subscriptions"]}
    gross = refunds = Decimal(0)
    orders: set[tuple[str, str]] = set()
    for txn in ghl["transactions"]:
        if (
            txn["altId"] not in locations
            or txn["status"] not in CAPTURED
            or txn["currency"] != currency
            or not since <= txn["createdAt"] < until
        ):
            continue
        gross += Decimal(str(txn["amount"]))
        refunds += Decimal(str(txn.get("amountRefunded") or 0))
        if txn["entityType"] == "order":
            orders.add((txn["altId"], txn["entityId"]))
        elif txn["entityType"] == "subscription":
            orders.add((txn["altId"], subs[txn["entityId"]]["entityId"]))
    return {"gross": gross, "refunds": refunds, "net": gross - refunds, "orders": len(orders)}


def expected_by_location(
    ghl: dict[str, Any], locations: list[str], currency: str, since: str, until: str
) -> dict[str, dict[str, Any]]:
    return {loc: expected_totals(ghl, [loc], currency, since, until) for loc in locations}


def expected_subscriptions(
    ghl: dict[str, Any], locations: list[str], currency: str
) -> tuple[int, Decimal]:
    per_month = {
        "month": Decimal(1),
        "year": Decimal(1) / 12,
        "week": Decimal(52) / 12,
        "day": Decimal(365) / 12,
    }
    active, mrr = 0, Decimal(0)
    for sub in ghl["subscriptions"]:
        if sub["altId"] in locations and sub["status"] == "active" and sub["currency"] == currency:
            recurring = sub["recurringProduct"]["price"]["recurring"]
            active += 1
            mrr += (
                Decimal(str(sub["amount"]))
                * per_month[recurring["interval"]]
                / int(recurring.get("intervalCount", 1))
            )
    return active, mrr.quantize(Decimal("0.01"))


def expected_currency_counts(ghl: dict[str, Any], locations: list[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for txn in ghl["transactions"]:
        if txn["altId"] in locations and txn["status"] in CAPTURED:
            counts[txn["currency"]] += 1
    return dict(counts)
