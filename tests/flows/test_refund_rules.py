"""The refund arithmetic on its own: which refunds are allowed, on which transaction, and which
ones GHL's growing amountRefunded has covered (request order, nothing counted twice)."""

from __future__ import annotations

from decimal import Decimal

from wizesync.flows.payments.payment_state import PaymentState, TransactionState
from wizesync.flows.refunds.rules import Accepted, Claim, Refused, decide, plan_settlement
from wizesync.mapping import Mapping

D = Decimal


def _state(**txns: tuple[str, str, str]) -> PaymentState:
    by_txn = {
        tid: TransactionState(amount=D(a), amount_refunded=D(r), status=s)
        for tid, (a, r, s) in txns.items()
    }
    captured = [t for t in by_txn.values() if t.status == "succeeded"]
    paid = sum((t.amount for t in captured), D(0))
    refunded = sum((t.amount_refunded for t in captured), D(0))
    return PaymentState(
        payment_status="paid",
        amount_paid=paid,
        amount_refunded=refunded,
        currency="USD",
        transaction_ids=list(by_txn),
        refundable=paid - refunded,
        by_transaction=by_txn,
    )


def _decide(
    amount: str, state: PaymentState, claims: list[Claim] | None = None, currency: str = "USD"
) -> Accepted | Refused:
    return decide(
        amount=D(amount),
        currency=currency,
        ghl_order_id="ord1",
        state=state,
        open_claims=claims or [],
        mapping=Mapping(),
    )


def test_refund_within_the_refundable_amount_is_accepted_on_its_transaction() -> None:
    verdict = _decide("49.00", _state(t1=("149.00", "0.00", "succeeded")))
    assert verdict == Accepted(transaction_id="t1", baseline=D("0.00"))


def test_refund_above_what_is_left_after_earlier_refunds_is_refused_in_words() -> None:
    verdict = _decide("100.00", _state(t1=("149.00", "60.00", "succeeded")))
    assert isinstance(verdict, Refused)
    assert "more than the 89.00 USD still refundable" in verdict.reason
    assert "refunded 60.00" in verdict.reason


def test_refunds_accepted_but_not_carried_out_count_against_the_refundable_amount() -> None:
    state = _state(t1=("149.00", "0.00", "succeeded"))
    open_claim = Claim(refund_id=1, transaction_id="t1", amount=D("100.00"), baseline=D("0"))
    refused = _decide("50.00", state, [open_claim])
    assert isinstance(refused, Refused)
    assert "100.00 in other refunds not yet carried out" in refused.reason
    # The rest fits, and its slice starts where the open refund's ends.
    assert _decide("49.00", state, [open_claim]) == Accepted("t1", D("100.00"))


def test_wrong_currency_is_refused() -> None:
    verdict = _decide("10.00", _state(t1=("149.00", "0", "succeeded")), currency="EUR")
    assert isinstance(verdict, Refused)
    assert "in EUR but GHL order ord1 was paid in USD" in verdict.reason


def test_failed_transactions_are_not_refundable() -> None:
    state = _state(t1=("149.00", "0", "failed"), t2=("149.00", "0", "succeeded"))
    assert _decide("149.00", state) == Accepted("t2", D("0"))


def test_refund_no_single_transaction_can_take_is_refused_with_a_way_out() -> None:
    state = _state(t1=("100.00", "0", "succeeded"), t2=("49.00", "0", "succeeded"))
    verdict = _decide("120.00", state)
    assert isinstance(verdict, Refused)
    assert (
        "no single transaction" in verdict.reason and "100.00 on transaction t1" in verdict.reason
    )


def test_settlement_goes_in_request_order_and_never_counts_money_twice() -> None:
    a = Claim(refund_id=1, transaction_id="t1", amount=D("30"), baseline=D("0"))
    b = Claim(refund_id=2, transaction_id="t1", amount=D("20"), baseline=D("0"))
    # GHL shows 30 back: the first refund is covered, the second's slice moves behind it.
    plan = plan_settlement([a, b], _state(t1=("149", "30", "succeeded")))
    assert [(s.refund_id, s.settled, s.baseline) for s in plan] == [
        (1, True, D("0")),
        (2, False, D("30")),
    ]
    # Next pass with nothing new: the second stays open (the 30 belonged to the first).
    b_moved = Claim(refund_id=2, transaction_id="t1", amount=D("20"), baseline=D("30"))
    assert not plan_settlement([b_moved], _state(t1=("149", "30", "succeeded")))[0].settled
    assert plan_settlement([b_moved], _state(t1=("149", "50", "succeeded")))[0].settled


def test_settlement_needs_growth_past_the_baseline() -> None:
    claim = Claim(refund_id=1, transaction_id="t1", amount=D("49"), baseline=D("20"))
    assert not plan_settlement([claim], _state(t1=("149", "60", "succeeded")))[0].settled
    assert plan_settlement([claim], _state(t1=("149", "69", "succeeded")))[0].settled
