"""Control plane for the fake GHL, `/_sandbox/ghl/...`: seed data, mint OAuth codes, simulate what
happens in GHL without the service (checkouts, refunds, failed payments, renewals, cancellations)
and send GHL webhooks on demand."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from wizesync.devmode import SANDBOX_APP_ID
from wizesync_sandbox.defaults import seed_defaults
from wizesync_sandbox.ghl_http import view_location
from wizesync_sandbox.ghl_invoices import invoice_webhook
from wizesync_sandbox.ghl_ledger import LedgerError
from wizesync_sandbox.ghl_state import Doc

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox


class LocationIn(BaseModel):
    id: str | None = None
    name: str | None = None
    company_id: str | None = None
    pit: bool = True
    private_token: str | None = None
    active: bool = True


class LocationPatch(BaseModel):
    active: bool | None = None
    pit: bool | None = None
    private_token: str | None = None


class PriceIn(BaseModel):
    id: str | None = None
    name: str = "Standard"
    amount: Decimal
    currency: str = "USD"
    type: Literal["one_time", "recurring"] = "one_time"
    interval: Literal["day", "week", "month", "year"] | None = None
    interval_count: int = 1


class ProductIn(BaseModel):
    location_id: str
    id: str | None = None
    name: str
    product_type: str = "SERVICE"
    description: str | None = None
    prices: list[PriceIn] = Field(default_factory=list)


class ContactIn(BaseModel):
    model_config = {"extra": "allow"}
    location_id: str


class CodeIn(BaseModel):
    location_id: str | None = None
    company_id: str | None = None
    user_type: Literal["Location", "Company"] = "Location"
    approved_locations: list[str] | None = None
    scopes: list[str] | None = None
    redirect_uri: str | None = None
    client_id: str | None = None


class CheckoutLine(BaseModel):
    price_id: str
    qty: int = Field(1, ge=1)


class CheckoutIn(BaseModel):
    location_id: str
    items: list[CheckoutLine]
    contact_id: str | None = None
    contact: dict[str, Any] | None = None
    outcome: Literal["paid", "pending", "failed"] = "paid"
    source: dict[str, Any] | None = None
    live_mode: bool = False
    provider: str = "stripe"


class RefundIn(BaseModel):
    transaction_id: str | None = None
    order_id: str | None = None
    amount: Decimal | None = None
    status: str | None = None  # e.g. "refunded": whether GHL changes it is unconfirmed


class FailIn(BaseModel):
    amount: Decimal | None = None
    reason: str = "card_declined"


class RenewIn(BaseModel):
    outcome: Literal["succeeded", "failed"] = "succeeded"


class WebhookIn(BaseModel):
    type: str
    object_id: str | None = None
    location_id: str | None = None
    payload: dict[str, Any] | None = None
    hold: bool = False


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/_sandbox/ghl", tags=["sandbox control plane: GHL"])
    store = sb.store

    def get(collection: str, object_id: str) -> Doc:
        doc = getattr(store, collection).get(object_id)
        if doc is None:
            raise HTTPException(404, f"no {collection[:-1]} {object_id}")
        return doc

    def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LedgerError as exc:
            raise HTTPException(400, exc.message) from None

    @api.post("/seed")
    async def seed() -> dict[str, Any]:
        """The demo data `wizesync sandbox` starts with."""
        return seed_defaults(sb)

    @api.post("/locations", status_code=201)
    async def add_location(body: LocationIn) -> Doc:
        return view_location(store.add_location(**body.model_dump()))

    @api.patch("/locations/{location_id}")
    async def patch_location(location_id: str, body: LocationPatch) -> Doc:
        """`active: false` pauses the sub-account: refresh and API calls answer
        "Location is not active" until it is active again."""
        location = get("locations", location_id)
        for key, value in body.model_dump(exclude_unset=True).items():
            location["privateToken" if key == "private_token" else key] = value
        return view_location(location)

    @api.post("/locations/{location_id}/uninstall")
    async def uninstall(location_id: str) -> dict[str, Any]:
        """The app is removed from the location: its tokens die and UNINSTALL is sent."""
        location = get("locations", location_id)
        sb.tokens.revoke_location(location_id)
        delivery = sb.outbox.ghl(
            "UNINSTALL",
            {
                "appId": sb.config.ghl_client_id or SANDBOX_APP_ID,
                "locationId": location_id,
                "companyId": location["companyId"],
            },
        )
        return {"uninstalled": location_id, "webhook": delivery.id}

    @api.post("/products", status_code=201)
    async def add_product(body: ProductIn) -> dict[str, Any]:
        get("locations", body.location_id)
        product = store.add_product(
            body.location_id,
            name=body.name,
            id=body.id,
            product_type=body.product_type,
            description=body.description,
        )
        prices = [store.add_price(product["_id"], **p.model_dump()) for p in body.prices]
        return {"product": product, "prices": prices}

    @api.post("/contacts", status_code=201)
    async def add_contact(body: ContactIn) -> Doc:
        get("locations", body.location_id)
        fields = body.model_dump(exclude={"location_id"})
        return store.upsert_contact(body.location_id, fields)[0]

    @api.post("/oauth/codes", status_code=201)
    async def mint_code(body: CodeIn) -> dict[str, Any]:
        """An authorization code as the install page would give it (no browser needed)."""
        if body.location_id:
            get("locations", body.location_id)
        try:
            grant = sb.tokens.grant_for(
                location_id=body.location_id,
                company_id=body.company_id,
                user_type=body.user_type,
                approved_locations=body.approved_locations,
                scopes=body.scopes,
                client_id=body.client_id,
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        code = sb.tokens.issue_code(grant, body.redirect_uri)
        return {
            "code": code,
            "user_type": grant.user_type,
            "company_id": grant.company_id,
            "location_id": grant.location_id,
            "approved_locations": grant.approved_locations,
            "scopes": grant.scopes,
        }

    @api.post("/oauth/expire")
    async def expire(location_id: str | None = None) -> dict[str, int]:
        """Expire access tokens now (all, or a location's): the next call answers 401."""
        return {"expired": sb.tokens.expire_access(location_id)}

    @api.post("/checkout", status_code=201)
    async def checkout(body: CheckoutIn) -> dict[str, Any]:
        """A customer buys through a GHL checkout: an order, and per `outcome` a succeeded or
        failed transaction (recurring prices also start a subscription)."""
        get("locations", body.location_id)
        return guarded(
            sb.orders.checkout,
            body.location_id,
            items=[i.model_dump() for i in body.items],
            contact_id=body.contact_id,
            contact=body.contact,
            outcome=body.outcome,
            source=body.source,
            live_mode=body.live_mode,
            provider=body.provider,
        )

    @api.post("/orders/{order_id}/status")
    async def order_status(order_id: str, body: dict[str, str]) -> Doc:
        """Change an order's status (e.g. cancelled); sends OrderStatusUpdate."""
        if "status" not in body:
            raise HTTPException(422, "status is required")
        return sb.ledger.set_order_status(get("orders", order_id), body["status"])

    @api.post("/orders/{order_id}/fail-payment", status_code=201)
    async def fail_payment(order_id: str, body: FailIn | None = None) -> Doc:
        """A payment attempt on the order fails: a failed transaction."""
        body = body or FailIn()
        return guarded(sb.orders.fail_payment, get("orders", order_id), body.amount, body.reason)

    @api.post("/refunds")
    async def refund(body: RefundIn) -> dict[str, Any]:
        """Refund (part of) a transaction, as someone would in GHL's UI or the gateway: raises
        `amountRefunded`; the order's paymentStatus becomes refunded or partially_paid. GHL sends
        no webhook for this: the service must poll."""
        if body.transaction_id:
            txn = get("transactions", body.transaction_id)
        elif body.order_id:
            get("orders", body.order_id)
            txns = [
                t
                for t in sb.ledger.order_transactions(body.order_id)
                if t["status"] in ("succeeded", "partially_refunded")
            ]
            if not txns:
                raise HTTPException(400, f"order {body.order_id} has no refundable transaction")
            txn = txns[0]
        else:
            raise HTTPException(422, "transaction_id or order_id is required")
        guarded(sb.ledger.refund, txn, body.amount, body.status)
        order = (
            store.orders.get(txn.get("entityId", "")) if txn.get("entityType") == "order" else None
        )
        return {"transaction": txn, "order": order}

    @api.post("/subscriptions/{subscription_id}/renew", status_code=201)
    async def renew(subscription_id: str, body: RenewIn | None = None) -> dict[str, Any]:
        """A renewal charge: succeeded (next period) or failed (past_due)."""
        return guarded(
            sb.subscriptions.renew,
            get("subscriptions", subscription_id),
            outcome=(body or RenewIn()).outcome,
        )

    @api.post("/subscriptions/{subscription_id}/cancel")
    async def cancel(subscription_id: str, by: str = "sandbox") -> Doc:
        return guarded(sb.subscriptions.cancel, get("subscriptions", subscription_id), by=by)

    @api.post("/webhooks")
    async def send_webhook(body: WebhookIn) -> dict[str, Any]:
        """Send a GHL webhook now: built from the current state of `object_id` (an order for
        Order*, an invoice for Invoice*, a location for INSTALL/UNINSTALL), with `payload` merged
        over it, signed with the sandbox key. `hold: true` only records it."""
        payload = {**_object_payload(sb, body), **(body.payload or {})}
        delivery = sb.outbox.ghl(body.type, payload, mode="hold")
        if not body.hold:
            await sb.outbox.deliver(delivery)
        return delivery.public()

    return api


def _object_payload(sb: Sandbox, body: WebhookIn) -> Doc:
    store = sb.store
    if body.object_id is None:
        if body.payload is None and body.type not in ("INSTALL", "UNINSTALL"):
            raise HTTPException(422, "object_id or payload is required")
        if body.type in ("INSTALL", "UNINSTALL"):
            location = store.locations.get(body.location_id or "")
            if location is None:
                raise HTTPException(422, "location_id of a seeded location is required")
            return {
                "appId": sb.config.ghl_client_id or SANDBOX_APP_ID,
                "locationId": location["id"],
                "companyId": location["companyId"],
            }
        return {}
    if body.type.startswith("Order"):
        order = store.orders.get(body.object_id)
        if order is None:
            raise HTTPException(404, f"no order {body.object_id}")
        return order
    if body.type.startswith("Invoice"):
        invoice = store.invoices.get(body.object_id)
        if invoice is None:
            raise HTTPException(404, f"no invoice {body.object_id}")
        return invoice_webhook(invoice)
    raise HTTPException(422, f"object_id is not supported for {body.type}; send a payload")
