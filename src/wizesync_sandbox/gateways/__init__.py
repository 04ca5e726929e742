"""Fake payment gateways (Stripe, NMI, Authorize.net) beside the fake GHL.

Stateful and tied to the fake GHL: a GHL transaction's `chargeId` is the charge a gateway
refunds; a refund made here raises that transaction's `amountRefunded` (and the order's payment
status) as GHL shows a refund taken at the provider. Faults: the sandbox's HTTP fault rules apply to
these paths too; declines are queued per gateway on the control plane
(`POST /_sandbox/gateways/{name}/declines`), and so are refunds whose answer is lost after they
happened (`POST /_sandbox/gateways/{name}/lose-answer`: a 500 or a timeout);
`ghl_lag` keeps refunds from reaching GHL until `POST /_sandbox/gateways/ghl-sync`.

One module per gateway (`router(sb, fakes)` with its own prefix), found by `routers()`: a new
fake gateway is one more module here.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from wizesync_sandbox.ghl_ledger import LedgerError
from wizesync_sandbox.ghl_state import Doc, dec

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox


@dataclass
class GatewayRefundDoc:
    id: str
    gateway: str
    charge_id: str
    amount: Decimal
    currency: str
    tag: str | None  # the caller's key: Stripe metadata/idempotency, NMI orderid, ...
    action: str = "refund"  # refund | void
    created: str = ""
    applied_to_ghl: bool = False
    meta: dict[str, Any] = field(default_factory=dict)  # what the gateway keeps beside it

    def public(self) -> Doc:
        return {
            "id": self.id,
            "gateway": self.gateway,
            "charge_id": self.charge_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "tag": self.tag,
            "action": self.action,
            "created": self.created,
            "applied_to_ghl": self.applied_to_ghl,
        }


class Declined(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class GatewayFakes:
    sb: Sandbox
    refunds: list[GatewayRefundDoc] = field(default_factory=list)
    declines: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    # Credentials a gateway refuses (any other non-empty one is accepted).
    rejected_credentials: set[str] = field(default_factory=set)
    unsettled: set[str] = field(default_factory=set)  # Authorize.net charges not settled yet
    ghl_lag: bool = False  # refunds wait before GHL shows them
    # Per gateway: Idempotency-Key -> (request fingerprint, status, body)
    idempotency: dict[str, tuple[Any, int, Doc]] = field(default_factory=dict)
    # Per gateway: the next refunds are made, then their answer is lost ("error" | "timeout").
    lost_answers: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))

    def reset(self) -> None:
        self.refunds.clear()
        self.declines.clear()
        self.rejected_credentials.clear()
        self.unsettled.clear()
        self.ghl_lag = False
        self.idempotency.clear()
        self.lost_answers.clear()

    async def answer_lost(self, gateway: str) -> JSONResponse | None:
        """After a refund was made: None to answer normally, else the lost answer (a 500, or
        a hang long past any client timeout, then a 504)."""
        if not self.lost_answers[gateway]:
            return None
        mode = self.lost_answers[gateway].popleft()
        if mode == "timeout":
            await asyncio.sleep(120)
            return JSONResponse({"error": "gateway_timeout"}, status_code=504)
        return JSONResponse(
            {"error": "internal_server_error", "message": "Internal Server Error (sandbox fault)"},
            status_code=500,
        )

    def accepts(self, *credentials: str | None) -> bool:
        return all(c and c not in self.rejected_credentials for c in credentials)

    def transaction(self, charge_id: str) -> Doc | None:
        for txn in self.sb.store.transactions.values():
            if txn.get("chargeId") == charge_id:
                return txn
        return None

    def refunded(self, charge_id: str) -> Decimal:
        return sum((r.amount for r in self.refunds if r.charge_id == charge_id), Decimal(0))

    def refund(
        self,
        gateway: str,
        charge_id: str,
        amount: Decimal | None,
        *,
        tag: str | None,
        action: str = "refund",
        prefix: str = "",
        meta: dict[str, Any] | None = None,
    ) -> GatewayRefundDoc:
        """Refund (or void) at the gateway; the GHL transaction follows. Declined in words
        when a queued decline applies or the amount is not refundable."""
        txn = self.transaction(charge_id)
        if txn is None:
            raise Declined(f"no such charge: {charge_id}")
        if self.declines[gateway]:
            raise Declined(self.declines[gateway].popleft())
        left = dec(txn["amount"]) - self.refunded(charge_id)
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            raise Declined(f"refund amount {amount} exceeds the {left} left on the charge")
        doc = GatewayRefundDoc(
            id=prefix + secrets.token_hex(8),
            gateway=gateway,
            charge_id=charge_id,
            amount=amount,
            currency=txn["currency"],
            tag=tag,
            action=action,
            created=self.sb.store.now(),
            meta=dict(meta or {}),
        )
        self.refunds.append(doc)
        if not self.ghl_lag:
            self._apply(doc)
        return doc

    def sync_ghl(self) -> int:
        """GHL catches up with every refund made at the gateways."""
        pending = [r for r in self.refunds if not r.applied_to_ghl]
        for doc in pending:
            self._apply(doc)
        return len(pending)

    def _apply(self, doc: GatewayRefundDoc) -> None:
        txn = self.transaction(doc.charge_id)
        if txn is None:
            return
        try:
            self.sb.ledger.refund(txn, doc.amount)
        except LedgerError:
            return  # GHL already shows more (refunded there by hand): nothing to add
        doc.applied_to_ghl = True

    def of(self, gateway: str, charge_id: str | None = None) -> list[GatewayRefundDoc]:
        return [
            r
            for r in self.refunds
            if r.gateway == gateway and (charge_id is None or r.charge_id == charge_id)
        ]


class DeclineIn(BaseModel):
    reason: str = "Do Not Honor"
    times: int = Field(1, ge=1, le=100)


class LoseIn(BaseModel):
    mode: str = Field("error", pattern="^(error|timeout)$")
    times: int = Field(1, ge=1, le=100)


class LagIn(BaseModel):
    ghl_lag: bool


def control_router(fakes: GatewayFakes) -> APIRouter:
    api = APIRouter(prefix="/_sandbox/gateways", tags=["sandbox control plane: gateways"])

    @api.get("/refunds")
    async def list_refunds(gateway: str | None = None) -> list[Doc]:
        """Every refund the fake gateways made, oldest first."""
        return [r.public() for r in fakes.refunds if gateway in (None, r.gateway)]

    @api.post("/{gateway}/declines", status_code=201)
    async def decline(gateway: str, body: DeclineIn) -> dict[str, Any]:
        """The gateway's next `times` refunds are declined with `reason`."""
        fakes.declines[gateway].extend([body.reason] * body.times)
        return {"gateway": gateway, "queued": len(fakes.declines[gateway])}

    @api.post("/{gateway}/lose-answer", status_code=201)
    async def lose_answer(gateway: str, body: LoseIn) -> dict[str, Any]:
        """The gateway's next `times` refunds happen, but their answer is lost: a 500
        (`error`) or no answer at all (`timeout`)."""
        fakes.lost_answers[gateway].extend([body.mode] * body.times)
        return {"gateway": gateway, "queued": len(fakes.lost_answers[gateway])}

    @api.post("/authorize_net/unsettled/{charge_id}")
    async def unsettled(charge_id: str) -> dict[str, Any]:
        """The Authorize.net payment has not settled yet (a refund must be a void)."""
        if fakes.transaction(charge_id) is None:
            raise HTTPException(404, f"no GHL transaction has charge {charge_id}")
        fakes.unsettled.add(charge_id)
        return {"charge_id": charge_id, "transactionStatus": "capturedPendingSettlement"}

    @api.post("/authorize_net/settle")
    async def settle() -> dict[str, str]:
        """Authorize.net's nightly settlement: refunds go into a settled batch, payments
        settle."""
        from wizesync_sandbox.gateways.authorize_net import settle

        return {"batchId": settle(fakes)}

    @api.post("/ghl-lag")
    async def lag(body: LagIn) -> dict[str, Any]:
        """`true`: refunds made at the gateways do not reach GHL until `/ghl-sync`."""
        fakes.ghl_lag = body.ghl_lag
        return {"ghl_lag": fakes.ghl_lag}

    @api.post("/ghl-sync")
    async def sync() -> dict[str, int]:
        return {"applied": fakes.sync_ghl()}

    @api.post("/rejected-credentials")
    async def reject(body: dict[str, str]) -> dict[str, int]:
        """Credentials the gateways refuse from now on (`{"value": "..."}`)."""
        fakes.rejected_credentials.add(body.get("value", ""))
        return {"rejected": len(fakes.rejected_credentials)}

    return api


def routers(sb: Sandbox, fakes: GatewayFakes) -> list[APIRouter]:
    """The control plane and every fake gateway module's router."""
    found = [control_router(fakes)]
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            found.append(importlib.import_module(f"{__name__}.{module.name}").router(sb, fakes))
    return found
