"""The models: money exact in major units, answers tolerant of new fields, bodies strict."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tests.support import ghl_kit as kit
from wizesync.ghl import models as m


def test_money_in_answers_is_an_exact_decimal_in_major_units() -> None:
    raw = json.dumps(kit.transaction(amount=150.1, amountRefunded=0.3)).encode()
    txn = m.Transaction.model_validate_json(raw)
    assert txn.amount == Decimal("150.1")
    assert txn.amount_refunded == Decimal("0.3")  # not 0.299999...
    assert txn.amount - txn.amount_refunded == Decimal("149.8")


def test_money_in_bodies_is_a_json_number_not_a_string_or_cents() -> None:
    body = m.RecordInvoicePayment(mode="cash", amount=Decimal("19.99")).to_body()
    assert json.dumps(body["amount"]) == "19.99"
    whole = m.RecordInvoicePayment(mode="cash", amount=Decimal("150.00")).to_body()
    assert whole["amount"] == 150 and isinstance(whole["amount"], int)


def test_unknown_answer_fields_are_kept_not_rejected() -> None:
    order = m.Order.model_validate(kit.order(brandNewField={"x": 1}))
    assert order.model_extra == {"brandNewField": {"x": 1}}
    assert order.items[0].price is not None and order.items[0].price.id == kit.PRICE_ID


def test_answer_with_only_an_id_still_parses() -> None:
    assert m.Invoice.model_validate({"_id": kit.INVOICE_ID}).total is None


def test_unknown_body_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        m.UpsertContact(email="a@b.test", favourite_colour="blue")


def test_upsert_without_email_or_phone_is_refused() -> None:
    with pytest.raises(ValidationError, match="email or a phone"):
        m.UpsertContact(first_name="Ada")


def test_body_leaves_out_fields_not_given() -> None:
    body = m.CreateInvoice(
        name="Order 1",
        currency="eur",
        items=[m.InvoiceItem(name="Ad", currency="EUR", amount=Decimal("0.5"), qty=2)],
        contact_details=m.InvoiceContactDetails(
            id="seD4PfOuKoVMLkEZqohJ", name="Ada", email="ada@example.com"
        ),
        issue_date=date(2024, 2, 29),
        sent_to=m.SentTo(email=["ada@example.com"]),
        live_mode=False,
    ).to_body()
    assert body["currency"] == "EUR"
    assert body["issueDate"] == "2024-02-29"
    assert "dueDate" not in body and "termsNotes" not in body
    assert body["items"] == [{"name": "Ad", "currency": "EUR", "amount": 0.5, "qty": 2}]


@pytest.mark.parametrize(
    "build",
    [
        lambda: m.InvoiceItem(name="Ad", currency="USD", amount=Decimal("-1"), qty=1),
        lambda: m.FulfillmentItem(price_id=kit.PRICE_ID, qty=0),
        lambda: m.CreateFulfillment(items=[]),
        lambda: m.RegisterWhitelabelProvider(
            unique_name="x", title="x", provider="stripe", description="", image_url=""
        ),
        lambda: m.RecordOrderPaymentCard(type="visa", last4="42"),
    ],
    ids=["negative-amount", "zero-qty", "no-items", "unknown-provider", "short-last4"],
)
def test_bodies_ghl_would_refuse_are_refused_here_first(build) -> None:
    with pytest.raises(ValidationError):
        build()


def test_whitelabel_list_tolerates_one_object_as_the_spec_types_it() -> None:
    one = m.WhitelabelProviderList.model_validate({"providers": kit.whitelabel_provider()})
    many = m.WhitelabelProviderList.model_validate({"providers": [kit.whitelabel_provider()]})
    assert len(one.as_list()) == 1 and len(many.as_list()) == 1
