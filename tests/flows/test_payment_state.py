"""compute_payment_state: GHL's current transactions -> Wizehire's payment state (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from wizesync.flows.payments.payment_state import (
    MixedCurrencies,
    compute_payment_state,
    money,
)
from wizesync.ghl import models as m
from wizesync.mapping import Mapping

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def txn(
    tid: str,
    amount: str | float,
    status: str = "succeeded",
    refunded: str | float = 0,
    currency: str = "USD",
    minutes: int = 0,
) -> m.Transaction:
    return m.Transaction.model_validate(
        {
            "_id": tid,
            "amount": amount,
            "amountRefunded": refunded,
            "status": status,
            "currency": currency,
            "entityType": "order",
            "entityId": "o1",
            "createdAt": (T0 + timedelta(minutes=minutes)).isoformat(),
        }
    )


def order(
    amount: str | float = "149.00", status: str = "completed", currency: str = "USD"
) -> m.Order:
    return m.Order.model_validate(
        {"_id": "o1", "amount": amount, "currency": currency, "status": status}
    )


MAPPING = Mapping()


def test_succeeded_transaction_for_the_whole_amount_is_paid() -> None:
    state = compute_payment_state([txn("t1", 149)], order(), MAPPING)
    assert state.payment_status == "paid"
    assert state.amount_paid == Decimal("149.00")
    assert state.amount_refunded == Decimal("0.00")
    assert state.refundable == Decimal("149.00")
    assert state.currency == "USD"
    assert state.transaction_ids == ["t1"]
    assert state.by_transaction["t1"].refundable == Decimal("149.00")


def test_part_refunded_transaction_is_partially_refunded() -> None:
    state = compute_payment_state([txn("t1", "149.00", refunded="49.00")], order(), MAPPING)
    assert state.payment_status == "partially_refunded"
    assert (state.amount_paid, state.amount_refunded, state.refundable) == (
        Decimal("149.00"),
        Decimal("49.00"),
        Decimal("100.00"),
    )
    assert state.by_transaction["t1"].amount_refunded == Decimal("49.00")


def test_every_transaction_refunded_in_full_is_refunded() -> None:
    state = compute_payment_state(
        [txn("t1", 100, refunded=100), txn("t2", 49, refunded=49, minutes=1)], order(), MAPPING
    )
    assert state.payment_status == "refunded"
    assert state.amount_refunded == Decimal("149.00")
    assert state.refundable == Decimal("0.00")


def test_status_refunded_without_amount_counts_as_fully_refunded() -> None:
    state = compute_payment_state([txn("t1", 149, status="refunded")], order(), MAPPING)
    assert state.payment_status == "refunded"
    assert state.amount_refunded == Decimal("149.00")


def test_only_failed_transactions_is_failed() -> None:
    state = compute_payment_state(
        [txn("t1", 149, status="failed")], order(status="pending"), MAPPING
    )
    assert state.payment_status == "failed"
    assert state.amount_paid == Decimal("0.00")
    assert state.refundable == Decimal("0.00")


def test_failed_then_succeeded_retry_is_paid() -> None:
    state = compute_payment_state(
        [txn("t2", 149, minutes=5), txn("t1", 149, status="failed")], order(), MAPPING
    )
    assert state.payment_status == "paid"
    assert state.amount_paid == Decimal("149.00")
    assert state.transaction_ids == ["t1", "t2"]  # oldest first, whatever GHL's list order


def test_pending_transaction_or_none_is_pending() -> None:
    assert (
        compute_payment_state(
            [txn("t1", 149, status="pending")], order(status="pending"), MAPPING
        ).payment_status
        == "pending"
    )
    assert compute_payment_state([], order(status="pending"), MAPPING).payment_status == "pending"
    assert compute_payment_state([], None, MAPPING).currency is None


def test_partial_capture_below_the_order_amount_stays_pending() -> None:
    state = compute_payment_state([txn("t1", 50)], order(amount=149), MAPPING)
    assert state.payment_status == "pending"
    assert state.amount_paid == Decimal("50.00")


def test_cancelled_order_without_payment_is_cancelled() -> None:
    state = compute_payment_state([], order(status="cancelled"), MAPPING)
    assert state.payment_status == "cancelled"


def test_mixed_currencies_are_refused() -> None:
    with pytest.raises(MixedCurrencies, match="EUR, USD"):
        compute_payment_state([txn("t1", 100), txn("t2", 49, currency="EUR")], order(), MAPPING)
    with pytest.raises(MixedCurrencies):
        compute_payment_state([txn("t1", 149, currency="EUR")], order(currency="USD"), MAPPING)


def test_amounts_are_decimals_and_float_noise_does_not_change_the_state() -> None:
    a = compute_payment_state(
        [txn("t1", 0.1), txn("t2", 0.2, minutes=1)], order(amount="0.3"), MAPPING
    )
    assert isinstance(a.amount_paid, Decimal)
    assert a.amount_paid == Decimal("0.30")
    assert a.payment_status == "paid"
    b = compute_payment_state(
        [txn("t2", "0.20", minutes=1), txn("t1", "0.10")], order(amount=0.3), MAPPING
    )
    assert a == b


def test_mapping_payment_status_table_decides_the_translation() -> None:
    mapping = Mapping(
        payment_status={
            "succeeded": "paid",
            "failed": "failed",
            "refunded": "refunded",
            "authorized": "paid",
        }
    )
    assert (
        compute_payment_state(
            [txn("t1", 149, status="authorized")], order(), mapping
        ).payment_status
        == "paid"
    )
    assert (
        compute_payment_state(
            [txn("t1", 149, status="authorized")], order(), MAPPING
        ).payment_status
        == "pending"
    )


def test_money_normalises_representations() -> None:
    assert money(149) == money("149.00") == money(149.0)
    assert str(money(149)) == "149.00"
    assert str(money("0.125")) == "0.125"
