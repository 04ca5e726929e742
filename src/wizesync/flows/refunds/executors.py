"""Refund executors: who actually moves the money once a refund has been validated.

GHL's public API cannot refund, so an executor is an interface. `manual` asks a human through
Slack and waits for GHL's `amountRefunded` to grow; `auto` and one executor per payment gateway
(`gateway_executor`, made from the plug-ins in `gateways/`) refund where the money is. Any other
executor registers a factory under a name:

    register_executor("my-executor", MyExecutor)

and is named in the mapping (`refunds: {executor: my-executor}`); `check_executor_name` refuses
unknown names where the services are built.

Contract of `execute` (the handler relies on it):
- It runs only for a refund already validated against GHL and stored with its transaction and
  baseline; its result is stored, then sent to Wizehire, by the caller. A `notice` in the result
  is queued for Slack in the transaction that stores the result (both or neither).
- It may run more than once for the same refund (a crash after it returned, before its result was
  stored): it must be idempotent per `refund.wizehire_refund_id` (a gateway gets it as its own
  idempotency key).
- Return `pending` (or `manual_action_required`) while GHL does not show the money back yet: the
  poller then sees the transaction's `amountRefunded` grow and settles the refund. Return
  `succeeded` only if GHL will never show it, `failed` with a reason in words when the gateway
  refused.
- Raise `RetryLater` for "try again" (gateway down), `PermanentFailure` for what a human must fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from wizesync.notify.outbox import notices_enabled
from wizesync.notify.slack import Notice
from wizesync.wizehire.models import decimal_text

if TYPE_CHECKING:
    from wizesync.flows.payments.payment_state import PaymentState

log = logging.getLogger(__name__)

ExecutorStatus = Literal["pending", "manual_action_required", "succeeded", "failed"]


@dataclass(frozen=True)
class RefundCase:
    """What an executor knows about one validated refund (a snapshot, no ORM object)."""

    refund_id: int  # sync_refunds.id
    wizehire_refund_id: str
    wizehire_order_id: str
    amount: Decimal
    currency: str
    reason_code: str
    note: str | None
    ghl_location_id: str
    ghl_order_id: str
    ghl_transaction_id: str
    notified_at: datetime | None = None
    status: str = "pending"  # the stored status when the executor runs
    # What an earlier attempt recorded (intent before the gateway call, its answer after).
    gateway: str | None = None
    gateway_refund_id: str | None = None
    gateway_attempted_at: datetime | None = None


@dataclass(frozen=True)
class ExecutorResult:
    status: ExecutorStatus
    # Required in words when status is failed; for manual_action_required, why a human must act.
    failure_reason: str | None = None
    # A message for a human, queued (durably) in the same transaction that stores `status`.
    notice: Notice | None = None
    gateway: str | None = None  # the gateway that answered (or declined)
    gateway_refund_id: str | None = None
    gateway_action: Literal["refund", "void"] | None = None


class RefundExecutor(Protocol):
    name: str

    async def execute(
        self, ctx: Any, refund: RefundCase, order_state: PaymentState
    ) -> ExecutorResult:
        """`ctx` is the handler's `EventContext` (`services`, `unit_of_work()`)."""
        ...


_FACTORIES: dict[str, Callable[[], RefundExecutor]] = {}


def register_executor(name: str, factory: Callable[[], RefundExecutor]) -> None:
    existing = _FACTORIES.get(name)
    if existing is not None and existing is not factory:
        raise ValueError(f"a refund executor named {name!r} is already registered")
    _FACTORIES[name] = factory


def executor_names() -> list[str]:
    return sorted(_FACTORIES)


def check_executor_name(name: str) -> str | None:
    """None when an executor of that name exists, else why not (in words)."""
    if name in _FACTORIES:
        return None
    return f"unknown refund executor {name!r}; known: {', '.join(executor_names())}"


def get_executor(name: str) -> RefundExecutor:
    """The executor the mapping names; KeyError (with the known names) when there is none."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(
            f"no refund executor named {name!r} (known: {', '.join(executor_names())})"
        ) from None
    return factory()


# --- manual --------------------------------------------------------------------------------------


class ManualExecutor:
    """A human refunds the transaction in GHL (or its payment provider); Wizehire is told
    `manual_action_required` meanwhile, and Slack once: the notice is queued with the status
    (guarded by `notified_at` and by the notice's key)."""

    name = "manual"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason  # why no executor could move the money (None: manual by choice)

    async def execute(
        self, ctx: Any, refund: RefundCase, order_state: PaymentState
    ) -> ExecutorResult:
        notice = None
        # Without Slack nobody is told; a later run with Slack configured still can.
        if refund.notified_at is None and notices_enabled(ctx.services):
            provider = await whitelabel_provider_text(ctx, refund.ghl_location_id)
            notice = manual_refund_notice(refund, order_state, provider, self.reason)
        return ExecutorResult(
            status="manual_action_required", notice=notice, failure_reason=self.reason
        )


def manual_refund_notice(
    refund: RefundCase, order_state: PaymentState, provider: str, why: str | None = None
) -> Notice:
    amount = f"{decimal_text(refund.amount)} {refund.currency}"
    txn = order_state.by_transaction.get(refund.ghl_transaction_id)
    txn_text = refund.ghl_transaction_id
    if txn is not None:
        txn_text += (
            f" (charged {decimal_text(txn.amount)}, already refunded "
            f"{decimal_text(txn.amount_refunded)})"
        )
    reason = refund.reason_code + (f": {refund.note}" if refund.note else "")
    return Notice(
        title=f"Refund needs a human: {amount} on Wizehire order {refund.wizehire_order_id}",
        lines=(
            f"Refund: {refund.wizehire_refund_id}",
            f"Order: Wizehire {refund.wizehire_order_id}, GHL {refund.ghl_order_id} "
            f"(location {refund.ghl_location_id})",
            f"Transaction: {txn_text}",
            f"Amount: {amount}",
            f"Reason: {reason}",
            f"Payment provider: {provider}",
            *((f"Why a human: {why}",) if why else ()),
            "Refund it in GHL or the provider; the poller marks it succeeded in Wizehire when "
            "GHL shows the money back.",
        ),
        key=f"refund-manual:{refund.wizehire_refund_id}",
        severity="action",
    )


async def whitelabel_provider_text(ctx: Any, location_id: str) -> str:
    """The location's white-label payment provider(s) in words; never raises (the message
    matters more than this line)."""
    try:
        page = await ctx.services.ghl.list_whitelabel_providers(location_id)
    except Exception as exc:  # any GHL trouble: say so instead of failing the notice
        log.warning(
            "could not read the white-label providers",
            extra={"location_id": location_id, "error": type(exc).__name__},
        )
        return f"unknown (GHL did not say: {type(exc).__name__})"
    names = [
        f"{p.title or p.id} ({p.provider})" if p.provider else (p.title or p.id) for p in page.items
    ]
    return ", ".join(names) if names else "none registered (GHL's own payment integration)"


register_executor(ManualExecutor.name, ManualExecutor)


def load_executors() -> list[str]:
    """Register `auto` and one executor per gateway plug-in (idempotent); the known names."""
    from wizesync.flows.refunds.gateway_executor import register_gateway_executors

    register_gateway_executors()
    return executor_names()
