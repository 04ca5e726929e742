"""Which category an order of the window gets (pure: no I/O).

Rules, the contract's table in its order: the FIRST that applies wins, so every order gets
exactly one.
- `missing_in_ghl`: a Wizehire order with status `paid` and no GHL order found for it.
- `missing_in_wizehire`: a GHL order on a mapped location, with an item whose price or product is
  in the mapping, that no Wizehire order (of the window or linked by a sync record) points to.
- `currency_mismatch`: both sides exist and their currencies differ (case-insensitive); also a GHL
  order whose transactions mix currencies (no single figure can be compared).
- `amount_mismatch`: Wizehire's `amount` differs from GHL's order total (as Decimals: 149 and
  149.00 are equal).
- `refund_mismatch`: Wizehire's `sync.amount_refunded` (absent = 0) differs from what GHL's
  transactions say was refunded.
- `status_mismatch`: Wizehire's `sync.payment_status` (absent = Wizehire was never told) differs
  from what GHL's current transactions map to (`flows/payments/payment_state.py`, the sync's
  own rules, with the Wizehire order's cancellation taken into account as the sync does).
- `fulfillment_missing`: GHL's order has money captured and kept (maps to `paid` or
  `partially_refunded`) and no fulfillment.
- `matched`: none of the above; this includes a Wizehire order not paid (pending, cancelled) for
  which GHL has nothing: nothing is owed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from wizesync.flows.payments.payment_state import MixedCurrencies, compute_payment_state, money
from wizesync.ghl import models as m
from wizesync.mapping import Mapping

ZERO = Decimal(0)
_NEEDS_FULFILMENT = frozenset({"paid", "partially_refunded"})


@dataclass(frozen=True)
class WizehireSide:
    order_id: str
    status: str  # pending | paid | cancelled
    amount: Decimal
    currency: str
    # From Wizehire's `sync` (what the service last told it): None = never told.
    payment_status: str | None
    amount_refunded: Decimal | None

    def figures(self) -> dict[str, Any]:
        return {
            "amount": _text(self.amount),
            "currency": self.currency,
            "status": self.status,
            "payment_status": self.payment_status,
            "amount_refunded": _text(
                self.amount_refunded if self.amount_refunded is not None else ZERO
            ),
        }


@dataclass(frozen=True)
class GhlSide:
    location_id: str
    order_id: str
    amount: Decimal | None
    currency: str | None
    order_status: str | None
    fulfilled: bool
    # The order's transactions as GHL lists them: [{_id, amount, amountRefunded, status, currency,
    # createdAt}] (GHL's own keys, so they validate as `ghl.models.Transaction`).
    transactions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class GhlState:
    """What GHL's current data maps to (None: the currencies are mixed, nothing summed)."""

    payment_status: str | None
    amount_refunded: Decimal | None
    currency: str | None
    problem: str | None = None


@dataclass(frozen=True)
class Verdict:
    category: str
    reason: str
    ghl_state: GhlState | None = None


def ghl_state(ghl: GhlSide, mapping: Mapping, *, wizehire_cancelled: bool = False) -> GhlState:
    transactions = [m.Transaction.model_validate(t) for t in ghl.transactions]
    order = m.Order.model_validate(
        {
            "_id": ghl.order_id,
            "amount": ghl.amount,
            "currency": ghl.currency,
            "status": ghl.order_status,
        }
    )
    try:
        state = compute_payment_state(
            transactions, order, mapping, wizehire_cancelled=wizehire_cancelled
        )
    except MixedCurrencies as exc:
        return GhlState(None, None, None, problem=str(exc))
    return GhlState(state.payment_status, state.amount_refunded, state.currency)


def ghl_figures(ghl: GhlSide, state: GhlState) -> dict[str, Any]:
    return {
        "amount": _text(ghl.amount) if ghl.amount is not None else None,
        "currency": ghl.currency,
        "payment_status": state.payment_status,
        "amount_refunded": _text(state.amount_refunded)
        if state.amount_refunded is not None
        else None,
        "fulfilled": ghl.fulfilled,
    }


def categorise(
    wizehire: WizehireSide | None,
    ghl: GhlSide | None,
    mapping: Mapping,
    *,
    ghl_mapped: bool = True,
) -> Verdict | None:
    """The verdict for one order; None for a GHL order alone whose items are not mapped (not an
    order of this service, so not an order of the window)."""
    if wizehire is None and ghl is None:
        raise ValueError("an order needs at least one side")
    if ghl is None:
        assert wizehire is not None
        if wizehire.status == "paid":
            return Verdict("missing_in_ghl", "paid in Wizehire, no GHL order")
        return Verdict("matched", f"{wizehire.status} in Wizehire, no GHL order (none owed)")
    state = ghl_state(
        ghl, mapping, wizehire_cancelled=wizehire is not None and wizehire.status == "cancelled"
    )
    if wizehire is None:
        if not ghl_mapped:
            return None
        return Verdict(
            "missing_in_wizehire", "no Wizehire order is linked to this GHL order", state
        )
    if state.problem is not None:
        return Verdict("currency_mismatch", state.problem, state)
    if (ghl.currency or "").upper() != wizehire.currency.upper():
        return Verdict(
            "currency_mismatch",
            f"Wizehire {wizehire.currency}, GHL {ghl.currency or 'none'}",
            state,
        )
    if ghl.amount is None or money(ghl.amount) != money(wizehire.amount):
        return Verdict(
            "amount_mismatch",
            f"Wizehire {_text(wizehire.amount)}, GHL "
            f"{_text(ghl.amount) if ghl.amount is not None else 'none'}",
            state,
        )
    wizehire_refunded = money(wizehire.amount_refunded or ZERO)
    ghl_refunded = money(state.amount_refunded or ZERO)
    if wizehire_refunded != ghl_refunded:
        return Verdict(
            "refund_mismatch", f"refunded: Wizehire {wizehire_refunded}, GHL {ghl_refunded}", state
        )
    if wizehire.payment_status != state.payment_status:
        return Verdict(
            "status_mismatch",
            f"payment status: Wizehire {wizehire.payment_status or 'never told'}, "
            f"GHL {state.payment_status}",
            state,
        )
    if state.payment_status in _NEEDS_FULFILMENT and not ghl.fulfilled:
        return Verdict(
            "fulfillment_missing", f"{state.payment_status} in GHL, no fulfillment", state
        )
    return Verdict("matched", "both sides agree", state)


def _text(value: Decimal | None) -> str | None:
    """Decimal string with at least two places (`flows.payments.payment_state.money`)."""
    return None if value is None else format(money(value), "f")
