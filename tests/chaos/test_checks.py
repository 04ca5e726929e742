"""The chaos run's checks catch what they are for: each is shown one consistent set of records,
then the same records with one promise broken."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from tests.chaos.checks import (
    InboxRow,
    Records,
    check_orders,
    check_rate_limits,
    check_refunds,
    check_tokens,
    check_webhooks,
    check_wizehire_once,
)
from tests.chaos.driver import Order

OUTAGE = (1_000_000.0, 1_000_010.0)  # epoch seconds: 1970-01-12T13:46:40Z .. +10 s
IN_OUTAGE, AFTER_OUTAGE = "1970-01-12T13:46:45Z", "1970-01-12T13:47:30Z"
REFUND = Decimal("49.00")


def order(refund: bool = False) -> Order:
    return Order(
        id="wh_ord_1",
        kind="paid",
        location_id="loc",
        email="a@example.com",
        refund_id="wh_ref_1" if refund else None,
    )


def records(refund: bool = False) -> Records:
    sync = {
        "ghl_order_id": "o1",
        "ghl_fulfillment_id": "f1",
        "payment_status": "partially_refunded" if refund else "paid",
    }
    patch = {
        "path": "/v1/orders/wh_ord_1/sync",
        "idempotency_key": "k1",
        "response": {"status": 200},
        "body": {},
    }
    refund_patches = [
        {
            "path": "/v1/refunds/wh_ref_1",
            "idempotency_key": f"r{n}",
            "response": {"status": 200},
            "body": {"status": status},
        }
        for n, status in enumerate(("manual_action_required", "succeeded"))
    ]
    return Records(
        ghl={
            "contacts": [{"email": "a@example.com"}],
            "invoices": [{"name": "Wizehire order wh_ord_1"}],
            "orders": [{"_id": "o1"}],
            "transactions": [
                {
                    "_id": "t1",
                    "entityType": "order",
                    "entityId": "o1",
                    "status": "succeeded",
                    "amountRefunded": str(REFUND) if refund else 0,
                }
            ],
            "fulfillments": {"o1": [{"_id": "f1"}]},
        },
        webhooks=[
            {
                "id": "msg_1",
                "source": "wizehire",
                "type": "order.created",
                "status": "delivered",
                "attempts": [
                    {"at": IN_OUTAGE, "status_code": 503},
                    {"at": AFTER_OUTAGE, "status_code": 202},
                ],
            }
        ],
        oauth_calls=[
            {
                "grant_type": "refresh_token",
                "outcome": "ok",
                "locationId": "loc",
                "at": f"1970-01-12T13:4{n}:00Z",
            }
            for n in (6, 7)
        ],
        rate_limits={"loc": {"rejected": 0, "today": 7}},
        faults=[],
        wizehire_orders={"wh_ord_1": {"id": "wh_ord_1", "ghl_sync": sync}},
        wizehire_refunds={"wh_ref_1": {"id": "wh_ref_1", "status": "succeeded"}} if refund else {},
        wizehire_patches=[patch, *(refund_patches if refund else [])],
        inbox=[InboxRow("wizehire", "msg_1", "order.created", "done", 2, 1.0, None)],
    )


def all_problems(rec: Records, refund: bool = False) -> list[str]:
    orders = [order(refund)]
    return (
        check_orders(orders, rec)
        + check_wizehire_once(rec)
        + check_refunds(orders, rec, REFUND)
        + check_webhooks(rec, [OUTAGE])
        + check_tokens(rec, renew_every=45)
        + check_rate_limits(rec)
    )


@pytest.mark.parametrize("refund", [False, True])
def test_consistent_records_pass(refund: bool) -> None:
    assert all_problems(records(refund), refund) == []


def test_a_second_fulfillment_or_invoice_or_contact_is_caught() -> None:
    rec = records()
    rec.ghl["fulfillments"]["o1"].append({"_id": "f2"})
    rec.ghl["invoices"].append({"name": "Wizehire order wh_ord_1"})
    rec.ghl["contacts"].append({"email": "a@example.com"})
    assert check_orders([order()], rec) == [
        "wh_ord_1 (paid): 2 invoices in GHL",
        "wh_ord_1: 2 fulfillments",
        "2 GHL contacts for a@example.com",
    ]


def test_an_unsynced_order_is_caught() -> None:
    rec = records()
    rec.wizehire_orders["wh_ord_1"]["ghl_sync"] = {"ghl_order_id": "o1"}
    assert check_orders([order()], rec) == ["wh_ord_1 (paid) not synced: {'ghl_order_id': 'o1'}"]


def test_a_webhook_answered_2xx_but_missing_from_the_inbox_is_lost() -> None:
    rec = records()
    rec.inbox = []
    assert check_webhooks(rec, [OUTAGE]) == [
        "LOST: wizehire order.created msg_1 answered 2xx, not in the inbox"
    ]


def test_an_event_not_done_is_caught() -> None:
    rec = records()
    rec.inbox[0].status, rec.inbox[0].last_error = "dead", "boom"
    assert check_webhooks(rec, [OUTAGE]) == [
        "wizehire order.created msg_1 ended dead: boom",
        "inbox wizehire order.created msg_1 ended dead: boom",
    ]


@pytest.mark.parametrize(("code", "at"), [(503, AFTER_OUTAGE), (500, IN_OUTAGE)])
def test_a_5xx_other_than_503_in_the_cut_is_caught(code: int, at: str) -> None:
    rec = records()
    rec.webhooks[0]["attempts"].insert(0, {"at": at, "status_code": code, "response": "x"})
    [problem] = check_webhooks(rec, [OUTAGE])
    assert problem.startswith(
        f"5xx outside the PostgreSQL cut: wizehire order.created msg_1 -> {code} at {at}"
    )


def test_two_refreshes_for_one_expiry_or_a_refused_refresh_are_caught() -> None:
    rec = records()
    rec.oauth_calls.append(
        {
            "grant_type": "refresh_token",
            "outcome": "ok",
            "locationId": "loc",
            "at": "1970-01-12T13:47:01Z",
        }
    )
    rec.oauth_calls.append(
        {
            "grant_type": "refresh_token",
            "outcome": "invalid_grant",
            "status": 400,
            "at": "1970-01-12T13:47:02Z",
        }
    )
    problems = check_tokens(rec, renew_every=45)
    assert problems[0].startswith("token refresh refused")
    assert problems[1] == (
        "loc: refreshes [1.0] s apart (a token is usable 45 s): more than one per expiry"
    )


def test_a_wizehire_write_applied_twice_is_caught() -> None:
    rec = records()
    rec.wizehire_patches.append(copy.deepcopy(rec.wizehire_patches[0]))
    assert check_wizehire_once(rec) == ["Wizehire applied key k1 2 times"]
    rec.wizehire_patches[-1]["replayed"] = True
    assert check_wizehire_once(rec) == []


def test_a_refund_told_twice_or_refunded_twice_in_ghl_is_caught() -> None:
    rec = records(refund=True)
    rec.wizehire_patches.append({**rec.wizehire_patches[-1], "idempotency_key": "r9"})
    rec.ghl["transactions"][0]["amountRefunded"] = "98.00"
    assert check_refunds([order(refund=True)], rec, REFUND) == [
        "refund wh_ref_1: Wizehire told ['manual_action_required', 'succeeded', 'succeeded']",
        "refund wh_ref_1: GHL refunded [Decimal('98.00')], not 49.00",
    ]


def test_a_429_is_caught() -> None:
    rec = records()
    rec.rate_limits["loc"]["rejected"] = 3
    assert check_rate_limits(rec) == ["GHL answered 429 3 times: {'loc': 3}"]
