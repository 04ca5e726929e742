"""The refund arithmetic, pure (no I/O): is a refund allowed, on which transaction, and which
accepted refunds has GHL's `amountRefunded` covered by now.

GHL shows refunds only as one growing number per transaction, so each accepted refund claims a
slice of that number: from its `refunded_baseline` (the transaction's `amountRefunded` when it
was accepted, or the end of the slice claimed by the refund accepted before it on the same
transaction, whichever is larger) to baseline + amount. A refund is settled once
`amountRefunded` reaches the end of its slice; several on one transaction settle in request
order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from wizesync.flows.payments.payment_state import (
    PaymentState,
    TransactionState,
    money,
    translate_status,
)
from wizesync.mapping import Mapping
from wizesync.wizehire.models import decimal_text

ZERO = Decimal(0)
_CAPTURED = frozenset({"paid", "partially_refunded", "refunded"})


@dataclass(frozen=True)
class Claim:
    """An accepted refund not settled yet: its slice of a transaction's amountRefunded."""

    refund_id: int
    transaction_id: str
    amount: Decimal
    baseline: Decimal


@dataclass(frozen=True)
class Accepted:
    transaction_id: str
    baseline: Decimal


@dataclass(frozen=True)
class Refused:
    reason: str


@dataclass(frozen=True)
class Settlement:
    refund_id: int
    settled: bool
    baseline: Decimal  # where its slice starts now (moved up behind earlier refunds)


def claim_ends(claims: Iterable[Claim]) -> dict[str, Decimal]:
    """Per transaction: where the last slice claimed by open refunds ends."""
    ends: dict[str, Decimal] = {}
    for claim in claims:  # request order
        start = max(claim.baseline, ends.get(claim.transaction_id, claim.baseline))
        ends[claim.transaction_id] = start + claim.amount
    return ends


def decide(
    *,
    amount: Decimal,
    currency: str,
    ghl_order_id: str,
    state: PaymentState,
    open_claims: Sequence[Claim],
    mapping: Mapping,
) -> Accepted | Refused:
    """Accept a refund onto one captured transaction with enough left, or refuse it in words."""
    asked = f"{_text(amount)} {currency}"
    if state.currency and state.currency.upper() != currency.upper():
        return Refused(
            f"the refund is in {currency} but GHL order {ghl_order_id} was paid in "
            f"{state.currency.upper()}"
        )
    if state.amount_paid <= ZERO:
        return Refused(
            f"nothing has been paid on GHL order {ghl_order_id} (payment status "
            f"{state.payment_status}), so there is nothing to refund"
        )
    ends = claim_ends(open_claims)
    available: dict[str, tuple[Decimal, Decimal]] = {}  # txn -> (left, start of a new slice)
    for txn_id, txn in state.by_transaction.items():
        if not _captured(txn, mapping):
            continue
        start = max(txn.amount_refunded, ends.get(txn_id, ZERO))
        available[txn_id] = (max(txn.amount - start, ZERO), start)
    total_left = sum((left for left, _ in available.values()), ZERO)
    awaiting = sum((c.amount for c in open_claims), ZERO)
    if amount > total_left:
        detail = f"paid {_text(state.amount_paid)}, refunded {_text(state.amount_refunded)}"
        if awaiting > ZERO:
            detail += f", {_text(awaiting)} in other refunds not yet carried out"
        return Refused(
            f"the refund of {asked} is more than the {_text(total_left)} "
            f"{currency} still refundable on GHL order {ghl_order_id} ({detail})"
        )
    for txn_id, (left, start) in available.items():  # oldest transaction first
        if amount <= left:
            return Accepted(transaction_id=txn_id, baseline=start)
    largest = max(available.items(), key=lambda item: item[1][0])
    return Refused(
        f"no single transaction of GHL order {ghl_order_id} has {asked} left to "
        f"refund (the most is {_text(largest[1][0])} on transaction "
        f"{largest[0]}); request one refund per transaction"
    )


def plan_settlement(claims: Sequence[Claim], state: PaymentState) -> list[Settlement]:
    """Which open refunds GHL's current amountRefunded covers, in request order per
    transaction; the others get their baseline moved behind the ones before them, so money
    refunded for an earlier refund is never counted again for a later one."""
    ends: dict[str, Decimal] = {}
    plan: list[Settlement] = []
    for claim in claims:
        txn = state.by_transaction.get(claim.transaction_id)
        start = max(claim.baseline, ends.get(claim.transaction_id, claim.baseline))
        end = start + claim.amount
        ends[claim.transaction_id] = end
        settled = txn is not None and txn.amount_refunded >= end
        plan.append(Settlement(refund_id=claim.refund_id, settled=settled, baseline=start))
    return plan


def _text(amount: Decimal) -> str:
    """49.0000 (as the database keeps it) reads 49.00."""
    return decimal_text(money(amount))


def _captured(txn: TransactionState, mapping: Mapping) -> bool:
    return translate_status(txn.status, mapping) in _CAPTURED
