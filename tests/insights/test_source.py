"""How GHL's answers become figures' inputs: SKUs of order lines, a subscription's interval, the
order a transaction belongs to, and the source's cache."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from wizesync.ghl import models as m
from wizesync.insights.figures import Line
from wizesync.insights.source import (
    SkuResolver,
    _order_of,
    mapped_locations,
    subscription_interval,
)
from wizesync.mapping import Locations, Mapping, Product

MAPPING = Mapping(
    locations=Locations(default="LocA", accounts={"acct_1": "LocB", "acct_2": "LocA"}),
    products={
        "BOOST": Product(price_id="price_boost", product_id="prod_boost"),
        "BOOST-EU": Product(price_id="price_boost_eu", product_id="prod_boost"),
        "PLAN": Product(price_id="price_plan", product_id="prod_plan"),
    },
)


def order(*items: dict) -> m.Order:
    return m.Order.model_validate({"_id": "o1", "items": list(items)})


def test_mapped_locations_are_the_default_and_every_accounts() -> None:
    assert mapped_locations(MAPPING) == ["LocA", "LocB"]
    assert mapped_locations(Mapping()) == []


def test_lines_map_by_price_then_by_product_weighted_by_amount() -> None:
    lines = SkuResolver(MAPPING).lines(
        order(
            {"qty": 2, "price": {"_id": "price_plan", "amount": 99}},
            {
                "qty": 1,
                "price": {"_id": "price_other", "amount": 10},
                "product": {"_id": "prod_boost"},
            },
            {"qty": 3, "price": {"_id": "price_unknown", "amount": 1.5}},
        )
    )
    # By product: the first SKU (alphabetically) of the product, BOOST before BOOST-EU.
    assert lines == (
        Line("PLAN", Decimal(198)),
        Line("BOOST", Decimal(10)),
        Line(None, Decimal("4.5")),
    )


def test_lines_without_prices_are_weighted_by_quantity() -> None:
    lines = SkuResolver(MAPPING).lines(
        order(
            {"qty": 2, "price": {"_id": "price_plan"}},
            {"qty": 1, "price": {"_id": "price_boost", "amount": 149}},
        )
    )
    assert lines == (Line("PLAN", Decimal(2)), Line("BOOST", Decimal(1)))


def sub(**fields: object) -> m.Subscription:
    return m.Subscription.model_validate({"_id": "s1", **fields})


def test_subscription_interval_from_the_schedule_or_the_price() -> None:
    assert subscription_interval(
        sub(schedule={"rrule": {"intervalType": "yearly", "interval": 1}})
    ) == ("year", 1)
    assert subscription_interval(
        sub(schedule={"rrule": {"intervalType": "weekly", "interval": "2"}})
    ) == ("week", 2)
    assert subscription_interval(
        sub(recurringProduct={"price": {"recurring": {"interval": "month", "intervalCount": 3}}})
    ) == ("month", 3)
    assert subscription_interval(sub(schedule={"executeAt": "2027-01-01T00:00:00Z"})) == (None, 1)
    assert subscription_interval(sub()) == (None, 1)


def txn(**fields: object) -> m.Transaction:
    return m.Transaction.model_validate({"_id": "t1", **fields})


def test_the_order_of_a_transaction() -> None:
    subs = {"s1": sub(entityType="order", entityId="o9", subscriptionId="sub_ext")}
    assert _order_of(txn(entityType="order", entityId="o1"), subs) == "o1"
    assert _order_of(txn(entityType="subscription", entityId="s1"), subs) == "o9"
    assert _order_of(txn(subscriptionId="s1"), subs) == "o9"
    assert _order_of(txn(entityType="invoice", entityId="inv1"), subs) is None
    assert _order_of(txn(entityType="subscription", entityId="gone"), subs) is None


class FakeGhl:
    """Answers like the GHL client, counting the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def iter_subscriptions(self, location_id: str, **_: object):
        self.calls.append(f"subscriptions {location_id}")
        yield sub(status="active", amount=99, currency="usd")

    async def iter_transactions(self, location_id: str, **_: object):
        self.calls.append(f"transactions {location_id}")
        yield txn(
            status="succeeded",
            amount=149,
            currency="usd",
            entityType="order",
            entityId="o1",
            createdAt="2026-11-15T10:00:00Z",
        )
        yield txn(
            _id="t2",
            status="succeeded",
            amount=5,
            currency="USD",
            entityType="order",
            entityId="o1",
            createdAt="2026-12-15T10:00:00Z",
        )  # after the window

    async def get_order(self, location_id: str, order_id: str) -> m.Order:
        self.calls.append(f"order {order_id}")
        return order({"qty": 1, "price": {"_id": "price_boost", "amount": 149}})

    async def get_subscription(self, location_id: str, subscription_id: str) -> m.Subscription:
        self.calls.append(f"subscription {subscription_id}")
        return sub(status="active", schedule={"rrule": {"intervalType": "monthly"}})


async def test_a_locations_reading_is_cached_and_orders_are_read_once() -> None:
    from datetime import UTC, datetime

    from wizesync.insights.source import GhlRevenueSource

    now = [0.0]
    ghl = FakeGhl()
    source = GhlRevenueSource(
        ghl,
        Mapping(
            locations=Locations(default="LocA"),  # type: ignore[arg-type]
            products=MAPPING.products,
        ),
        cache_seconds=60,
        clock=lambda: now[0],
    )
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    (facts,) = await source.read(since, until)
    assert [p.transaction_id for p in facts.payments] == ["t1"]  # cut to the window
    assert facts.payments[0].currency == "USD"
    assert facts.payments[0].lines == (Line("BOOST", Decimal(149)),)
    assert facts.subscriptions[0].interval == "month"
    assert len(ghl.calls) == 4
    await source.read(since, until)
    assert len(ghl.calls) == 4  # within the TTL: nothing read again
    now[0] = 61.0
    await source.read(since, until)
    # Read again, but the order's items and the subscription's interval are kept.
    assert ghl.calls[4:] == ["subscriptions LocA", "transactions LocA"]


async def test_orders_made_from_our_invoice_take_their_skus_from_the_sync_record() -> None:
    from datetime import UTC, datetime

    from wizesync.insights.source import GhlRevenueSource

    asked: list[tuple[str, list[str]]] = []

    async def known_items(location_id: str, order_ids: list[str]) -> dict[str, list[dict]]:
        asked.append((location_id, order_ids))
        return {"o1": [{"sku": "BOOST", "quantity": 1, "unit_amount": "149.00"}]}

    ghl = FakeGhl()
    mapping = Mapping(locations=Locations(default="LocA"), products=MAPPING.products)
    source = GhlRevenueSource(ghl, mapping, known_items=known_items)  # type: ignore[arg-type]
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    (facts,) = await source.read(since, until)
    assert asked == [("LocA", ["o1"])]
    assert not [c for c in ghl.calls if c.startswith("order ")]  # no GET of the order
    # The same lines GHL's order would have given.
    from_ghl = SkuResolver(mapping).lines(await FakeGhl().get_order("LocA", "o1"))
    assert facts.payments[0].lines == from_ghl


async def test_invoice_order_items_are_only_the_services_invoice_orders(
    sessionmaker: Any,
) -> None:
    from wizesync.db import insights_repo
    from wizesync.db.sync_models import SyncOrder

    async with sessionmaker() as session, session.begin():
        for n, source in enumerate(("invoice", "matched", "explicit", "invoice")):
            session.add(
                SyncOrder(
                    wizehire_order_id=f"wh_{n}",
                    account_id="acct",
                    wizehire_status="paid",
                    ghl_location_id="LocA" if n < 3 else "LocB",
                    ghl_order_id=f"o{n}",
                    ghl_order_source=source,
                    currency="USD",
                    amount=Decimal("149.00"),
                    order_snapshot={
                        "id": f"wh_{n}",
                        "items": [{"sku": "BOOST", "quantity": 1, "unit_amount": "149.00"}],
                    },
                )
            )
    async with sessionmaker() as session:
        found = await insights_repo.invoice_order_items(
            session, "LocA", ["o0", "o1", "o2", "o3", "nope"]
        )
    assert list(found) == ["o0"]
    assert found["o0"][0]["sku"] == "BOOST"
