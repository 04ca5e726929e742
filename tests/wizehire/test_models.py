"""The API bodies: amounts as decimal strings that are never rounded, moments in UTC with `Z`,
and values the contract does not allow refused before anything is sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tests.wizehire import kit
from wizesync.wizehire.models import OrderSync, RefundUpdate, decimal_text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("149", "149.00"),
        ("149.5", "149.50"),
        ("149.00", "149.00"),
        ("0.125", "0.125"),
        ("1E+2", "100.00"),
        ("0", "0.00"),
    ],
)
def test_amounts_are_decimal_strings_with_at_least_two_decimals(amount: str, text: str) -> None:
    assert decimal_text(Decimal(amount)) == text
    body = RefundUpdate(status="succeeded", amount=Decimal(amount))
    assert json.loads(body.model_dump_json())["amount"] == text


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (
            datetime(2026, 11, 27, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-27T12:00:00Z",
        ),
        (datetime(2026, 11, 27, 12, 0), "2026-11-27T12:00:00Z"),  # naive: the service's UTC
        (datetime(2026, 11, 27, 12, 0, 0, 250000, tzinfo=UTC), "2026-11-27T12:00:00.250000Z"),
    ],
    ids=["offset", "naive", "fraction"],
)
def test_moments_are_sent_in_utc(moment: datetime, text: str) -> None:
    body = RefundUpdate(status="succeeded", processed_at=moment)
    assert json.loads(body.model_dump_json())["processed_at"] == text


@pytest.mark.parametrize(
    "change",
    [
        {"payment_status": "settled"},
        {"amount_paid": Decimal("-1")},
        {"currency": "usd"},
        {"amount_refunded": Decimal("NaN")},
        {"unexpected": 1},
    ],
    ids=["status", "negative", "currency", "nan", "extra-field"],
)
def test_bodies_the_contract_does_not_allow_are_refused(change: dict) -> None:
    values = {**kit.order_sync().model_dump(), **change}
    with pytest.raises(ValidationError):
        OrderSync(**values)
