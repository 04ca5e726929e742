"""The fake GHL's payments and invoices endpoints (`apps/payments.json`, `apps/invoices.json`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wizesync_sandbox.clock import parse_moment
from wizesync_sandbox.ghl_http import Caller, GhlHttpError, not_found
from wizesync_sandbox.ghl_invoices import invoice_view
from wizesync_sandbox.ghl_ledger import (
    order_list_view,
    order_view,
    transaction_list_view,
    transaction_view,
)
from wizesync_sandbox.ghl_state import Doc, hex_id, page
from wizesync_sandbox.ghl_subscriptions import subscription_list_view, subscription_view

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox

_UNIQUE_NAME = re.compile(r"^[a-z](?:[a-z-]*[a-z])?$")


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter()
    store = sb.store

    def owned(
        collection: str, what: str, object_id: str, caller: Caller, payments_style: bool = True
    ) -> Doc:
        doc = store.owned(collection, object_id, caller.location_id)
        if doc is None:
            raise not_found(what, object_id, payments_style=payments_style)
        return doc

    # --- orders ----------------------------------------------------------------------------------
    @api.get("/payments/orders")
    async def list_orders(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "payments/orders.readonly")
        caller.require_query("altId")
        q = caller.query
        docs = _filtered(
            store.orders.values(),
            caller,
            {
                "status": lambda d, v: d["status"] == v,
                "paymentStatus": lambda d, v: d.get("paymentStatus") == v,
                "contactId": lambda d, v: d.get("contactId") == v,
                "sourceId": lambda d, v: d.get("source", {}).get("id") == v,
                "search": lambda d, v: (
                    v.lower()
                    in " ".join(
                        str(d.get(k, "")) for k in ("_id", "contactName", "contactEmail")
                    ).lower()
                ),
            },
        )
        return JSONResponse(
            {
                "data": [order_list_view(d) for d in page(docs, q("limit"), q("offset"))],
                "totalCount": len(docs),
            }
        )

    @api.get("/payments/orders/{order_id}")
    async def get_order(request: Request, order_id: str) -> JSONResponse:
        caller = await sb.gate(request, "payments/orders.readonly")
        caller.require_query("altId")
        return JSONResponse(order_view(owned("orders", "Order", order_id, caller)))

    @api.post("/payments/orders/{order_id}/record-payment")
    async def record_order_payment(request: Request, order_id: str) -> JSONResponse:
        caller = await sb.gate(request, "payments/orders.collectPayment")
        order = owned("orders", "Order", order_id, caller)
        return JSONResponse(sb.orders.record_payment(order, caller.require_body_object()))

    @api.get("/payments/orders/{order_id}/fulfillments")
    async def list_fulfillments(request: Request, order_id: str) -> JSONResponse:
        caller = await sb.gate(request, "payments/orders.readonly")
        caller.require_query("altId", "altType")
        owned("orders", "Order", order_id, caller)
        return JSONResponse({"status": True, "data": store.fulfillments.get(order_id, [])})

    @api.post("/payments/orders/{order_id}/fulfillments")
    async def create_fulfillment(request: Request, order_id: str) -> JSONResponse:
        caller = await sb.gate(request, "payments/orders.write")
        order = owned("orders", "Order", order_id, caller)
        doc = sb.orders.create_fulfillment(order, caller.require_body_object())
        return JSONResponse({"status": True, "data": doc})

    # --- transactions ----------------------------------------------------------------------------
    @api.get("/payments/transactions")
    async def list_transactions(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "payments/transactions.readonly")
        caller.require_query("altId", "altType")
        q = caller.query

        def of_subscription(doc: Doc, wanted: str) -> bool:
            sub = store.subscriptions.get(doc.get("subscriptionId") or "")
            return doc.get("subscriptionId") == wanted or (
                sub is not None and sub.get("subscriptionId") == wanted
            )

        docs = _filtered(
            store.transactions.values(),
            caller,
            {
                # GHL-FACTS: entityId is an order or an invoice id; an invoice's payments stay
                # findable by the invoice after they became the order's.
                "entityId": lambda d, v: v in (d.get("entityId"), d.get("invoiceId")),
                "subscriptionId": of_subscription,
                "contactId": lambda d, v: d.get("contactId") == v,
                "entitySourceType": lambda d, v: d.get("entitySourceType") == v,
                "entitySourceSubType": lambda d, v: d.get("entitySourceSubType") == v,
                "search": lambda d, v: (
                    v.lower()
                    in " ".join(
                        str(d.get(k, ""))
                        for k in (
                            "_id",
                            "contactName",
                            "contactEmail",
                            "entitySourceName",
                            "entitySourceId",
                        )
                    ).lower()
                ),
            },
        )
        return JSONResponse(
            {
                "data": [transaction_list_view(d) for d in page(docs, q("limit"), q("offset"))],
                "totalCount": len(docs),
            }
        )

    @api.get("/payments/transactions/{transaction_id}")
    async def get_transaction(request: Request, transaction_id: str) -> JSONResponse:
        caller = await sb.gate(request, "payments/transactions.readonly")
        caller.require_query("altId", "altType")
        return JSONResponse(
            transaction_view(owned("transactions", "Transaction", transaction_id, caller))
        )

    # --- subscriptions ---------------------------------------------------------------------------
    @api.get("/payments/subscriptions")
    async def list_subscriptions(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "payments/subscriptions.readonly")
        caller.require_query("altId", "altType")
        q = caller.query
        docs = _filtered(
            store.subscriptions.values(),
            caller,
            {
                "entityId": lambda d, v: d.get("entityId") == v,
                "contactId": lambda d, v: d.get("contactId") == v,
                "id": lambda d, v: v in (d["_id"], d.get("subscriptionId")),
                "entitySourceType": lambda d, v: d.get("entitySourceType") == v,
                "search": lambda d, v: (
                    v.lower()
                    in " ".join(
                        str(d.get(k, "")) for k in ("_id", "contactName", "contactEmail")
                    ).lower()
                ),
            },
        )
        return JSONResponse(
            {
                "data": [subscription_list_view(d) for d in page(docs, q("limit"), q("offset"))],
                "totalCount": len(docs),
            }
        )

    @api.get("/payments/subscriptions/{subscription_id}")
    async def get_subscription(request: Request, subscription_id: str) -> JSONResponse:
        caller = await sb.gate(request, "payments/subscriptions.readonly")
        caller.require_query("altId", "altType")
        return JSONResponse(
            subscription_view(owned("subscriptions", "Subscription", subscription_id, caller))
        )

    # --- white-label providers -------------------------------------------------------------------
    @api.get("/payments/integrations/provider/whitelabel")
    async def list_providers(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "payments/integration.readonly")
        caller.require_query("altId", "altType")
        docs = [d for d in store.providers.values() if d["altId"] == caller.location_id]
        return JSONResponse(
            {"providers": page(docs, caller.query("limit"), caller.query("offset"), 0)}
        )

    @api.post("/payments/integrations/provider/whitelabel")
    async def register_provider(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "payments/integration.write")
        body = caller.require_body_object()
        required = (
            "altId",
            "altType",
            "uniqueName",
            "title",
            "provider",
            "description",
            "imageUrl",
        )
        errors = [f"{name} should not be empty" for name in required if not body.get(name)]
        if body.get("provider") and body["provider"] not in ("authorize-net", "nmi"):
            errors.append("provider must be one of the following values: authorize-net, nmi")
        if body.get("uniqueName") and not _UNIQUE_NAME.match(str(body["uniqueName"])):
            errors.append(
                "uniqueName must start and end with a letter and hold only lowercase "
                "letters and hyphens"
            )
        if body.get("imageUrl") and not str(body["imageUrl"]).startswith("https://"):
            errors.append("imageUrl must start with https://")
        if errors:
            raise GhlHttpError(422, errors)
        if any(
            d["altId"] == caller.location_id and d["route"] == body["uniqueName"]
            for d in store.providers.values()
        ):
            raise GhlHttpError(400, f"A provider named {body['uniqueName']} already exists")
        now = store.now()
        doc = {
            "_id": hex_id(),
            "altId": caller.location_id,
            "altType": "location",
            "title": body["title"],
            "route": body["uniqueName"],
            "provider": body["provider"],
            "description": body["description"],
            "imageUrl": body["imageUrl"],
            "createdAt": now,
            "updatedAt": now,
        }
        store.providers[doc["_id"]] = doc
        return JSONResponse(doc)

    # --- invoices --------------------------------------------------------------------------------
    @api.post("/invoices/")
    @api.post("/invoices")
    async def create_invoice(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "invoices.write", agency=True)
        invoice = sb.invoices.create(caller.location_id, caller.require_body_object())
        return JSONResponse(invoice_view(invoice))

    @api.get("/invoices/")
    @api.get("/invoices")
    async def list_invoices(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "invoices.readonly", agency=True)
        caller.require_query("altId", "altType", "limit", "offset")
        q = caller.query
        docs = _filtered(
            store.invoices.values(),
            caller,
            {
                "status": lambda d, v: d["status"] == v,
                "contactId": lambda d, v: d.get("contactDetails", {}).get("id") == v,
                "search": lambda d, v: (
                    v.lower()
                    in " ".join(
                        str(d.get(k, "")) for k in ("_id", "name", "title", "invoiceNumber")
                    ).lower()
                    + " "
                    + str(d.get("contactDetails", {}).get("name", "")).lower()
                ),
            },
        )
        if q("sortOrder") == "ascend":
            docs.reverse()
        return JSONResponse(
            {
                "invoices": [invoice_view(d) for d in page(docs, q("limit"), q("offset"))],
                "total": len(docs),
            }
        )

    @api.get("/invoices/{invoice_id}")
    async def get_invoice(request: Request, invoice_id: str) -> JSONResponse:
        caller = await sb.gate(request, "invoices.readonly", agency=True)
        caller.require_query("altId", "altType")
        return JSONResponse(invoice_view(owned("invoices", "Invoice", invoice_id, caller, False)))

    @api.post("/invoices/{invoice_id}/record-payment")
    async def record_invoice_payment(request: Request, invoice_id: str) -> JSONResponse:
        caller = await sb.gate(request, "invoices.write", agency=True)
        invoice = owned("invoices", "Invoice", invoice_id, caller, False)
        return JSONResponse(sb.invoices.record_payment(invoice, caller.require_body_object()))

    @api.post("/invoices/{invoice_id}/void")
    async def void_invoice(request: Request, invoice_id: str) -> JSONResponse:
        caller = await sb.gate(request, "invoices.write", agency=True)
        invoice = owned("invoices", "Invoice", invoice_id, caller, False)
        return JSONResponse(sb.invoices.void(invoice, caller.require_body_object()))

    return api


Filter = Callable[[Doc, str], bool]


def _filtered(docs: object, caller: Caller, filters: dict[str, Filter]) -> list[Doc]:
    """This location's documents matching the query's filters, newest first (GHL's order).
    `startAt`/`endAt` (dates or timestamps, inclusive) bound `createdAt`; `paymentMode` is
    live/test."""
    start = parse_moment(caller.query("startAt") or "")
    end = parse_moment(caller.query("endAt") or "", end_of_day=True)
    mode = caller.query("paymentMode")
    out = []
    for doc in docs:  # type: ignore[attr-defined]
        if (doc.get("altId") or doc.get("locationId")) != caller.location_id:
            continue
        created = parse_moment(doc["createdAt"])
        if (start and created and created < start) or (end and created and created > end):
            continue
        if mode in ("live", "test") and bool(doc.get("liveMode")) != (mode == "live"):
            continue
        if all(
            fn(doc, caller.query(name) or "") for name, fn in filters.items() if caller.query(name)
        ):
            out.append(doc)
    out.sort(key=lambda d: (d["createdAt"], d["_id"]), reverse=True)
    return out
