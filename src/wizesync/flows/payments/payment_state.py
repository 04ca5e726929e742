"""An order's payment state, computed from GHL's CURRENT transactions (pure: no I/O).

Webhooks arrive late, twice and out of order, so their snapshots are never trusted: every handler
and the poller re-read the order's transactions and call `compute_payment_state`. The same inputs
always give the same state (ids sorted, amounts normalised), so "did it change?" is a plain
comparison and a redelivered event patches nothing.

Rules (GHL has no refund object: a refund is only `amountRefunded` growing on a transaction):
- each transaction's GHL status is translated with the mapping's `payment_status` table, falling
  back to `_DEFAULT_STATUS` for statuses the table does not name; unknown ones count as pending;
- money was captured by transactions that translate to paid, partially_refunded or refunded;
  `amount_paid` is their sum, `amount_refunded` the sum of their `amountRefunded` (capped at each
  amount; a transaction GHL marks refunded without an amount counts as fully refunded);
- captured and everything refunded -> refunded; part refunded -> partially_refunded; captured
  at least the order's amount (or the order's amount is unknown) -> paid; captured less than the
  order's amount (a partial invoice payment) -> pending;
- nothing captured: the Wizehire order cancelled -> cancelled; else a pending transaction ->
  pending; a failed one -> failed; an order GHL cancelled -> cancelled; otherwise pending.
- transactions (or the order) in more than one currency are refused (`MixedCurrencies`): adding
  USD to EUR would tell Wizehire a wrong amount, so a human has to look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from wizesync.ghl import models as m
from wizesync.mapping import Mapping, WizehirePaymentStatus

ZERO = Decimal(0)
_CAPTURED = frozenset({"paid", "partially_refunded", "refunded"})
# Used only for GHL statuses the mapping's table does not name.
_DEFAULT_STATUS: dict[str, WizehirePaymentStatus] = {
    "succeeded": "paid",
    "success": "paid",
    "paid": "paid",
    "partially_refunded": "partially_refunded",
    "refunded": "refunded",
    "failed": "failed",
    "pending": "pending",
}
_CANCELLED_ORDER = frozenset({"cancelled", "canceled", "voided", "void"})


class MixedCurrencies(ValueError):
    """The order's transactions are in more than one currency: not summed, a human decides."""


@dataclass(frozen=True)
class TransactionState:
    amount: Decimal
    amount_refunded: Decimal
    status: str  # GHL's own status, untranslated

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.amount_refunded


@dataclass(frozen=True)
class PaymentState:
    payment_status: WizehirePaymentStatus
    amount_paid: Decimal
    amount_refunded: Decimal
    currency: str | None
    transaction_ids: list[str]
    refundable: Decimal
    by_transaction: dict[str, TransactionState] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """The columns of a sync record this state sets."""
        return {
            "payment_status": self.payment_status,
            "amount_paid": self.amount_paid,
            "amount_refunded": self.amount_refunded,
            "ghl_transaction_ids": list(self.transaction_ids),
        }


def money(value: Decimal | int | float | str | None) -> Decimal:
    """Stable Decimal for comparisons and JSON: at least two places, no trailing noise
    (149, 149.0 and 149.00 are the same amount and must not look like a change)."""
    if value is None:
        return Decimal("0.00")
    amount = Decimal(str(value)).normalize()
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        return amount.quantize(Decimal("0.01"))
    return amount


def translate_status(ghl_status: str | None, mapping: Mapping) -> WizehirePaymentStatus:
    status = (ghl_status or "").strip().lower()
    table = {k.lower(): v for k, v in mapping.payment_status.items()}
    return table.get(status) or _DEFAULT_STATUS.get(status, "pending")


def compute_payment_state(
    transactions: list[m.Transaction],
    order: m.Order | None,
    mapping: Mapping,
    *,
    wizehire_cancelled: bool = False,
) -> PaymentState:
    """The payment state of one GHL order from its current transactions (see module doc);
    `wizehire_cancelled`: Wizehire cancelled the order it is synced with."""
    currencies = {t.currency.upper() for t in transactions if t.currency}
    if order is not None and order.currency:
        currencies.add(order.currency.upper())
    if len(currencies) > 1:
        raise MixedCurrencies(
            f"GHL order {order.id if order else '?'} has transactions in several currencies "
            f"({', '.join(sorted(currencies))}); amounts are not added across currencies"
        )
    currency = next(iter(currencies), None)

    ordered = sorted(transactions, key=_sort_key)
    by_transaction: dict[str, TransactionState] = {}
    translated: list[WizehirePaymentStatus] = []
    paid = refunded = ZERO
    for txn in ordered:
        status = translate_status(txn.status, mapping)
        translated.append(status)
        amount = money(txn.amount)
        amount_refunded = min(money(txn.amount_refunded), amount)
        if status == "refunded" and amount_refunded == ZERO:
            amount_refunded = amount  # refunded by status only: GHL left the amount out
        if status in _CAPTURED:
            paid += amount
            refunded += amount_refunded
        else:
            amount_refunded = money(0)
        by_transaction[txn.id] = TransactionState(
            amount=amount, amount_refunded=money(amount_refunded), status=txn.status or ""
        )

    return PaymentState(
        payment_status=_status(paid, refunded, translated, order, wizehire_cancelled),
        amount_paid=money(paid),
        amount_refunded=money(refunded),
        currency=currency,
        transaction_ids=[t.id for t in ordered],
        refundable=money(paid - refunded),
        by_transaction=by_transaction,
    )


def _status(
    paid: Decimal,
    refunded: Decimal,
    translated: list[WizehirePaymentStatus],
    order: m.Order | None,
    wizehire_cancelled: bool = False,
) -> WizehirePaymentStatus:
    if paid > ZERO:
        if refunded >= paid:
            return "refunded"
        if refunded > ZERO:
            return "partially_refunded"
        if order is not None and order.amount is not None and paid < money(order.amount):
            return "pending"  # part of the order captured (partial invoice payment)
        return "paid"
    if wizehire_cancelled:
        # Nothing captured and Wizehire no longer wants it: a GHL checkout order (ours to leave
        # alone, not to void) would otherwise keep reporting `pending` for a dead order.
        return "cancelled"
    if "pending" in translated:
        return "pending"
    if "failed" in translated:
        return "failed"
    if order is not None and (order.status or "").lower() in _CANCELLED_ORDER:
        return "cancelled"
    return "pending"


def _sort_key(txn: m.Transaction) -> tuple[datetime, str]:
    created = txn.created_at or datetime.min.replace(tzinfo=UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created, txn.id
