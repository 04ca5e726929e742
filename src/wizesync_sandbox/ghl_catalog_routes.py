"""The fake GHL's contacts and products/prices endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wizesync_sandbox.ghl_http import GhlHttpError, not_found
from wizesync_sandbox.ghl_state import Doc, page

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox

_SEARCH_FIELDS = {
    "email": "emailLowerCase",
    "phone": "phone",
    "firstName": "firstName",
    "lastName": "lastName",
    "companyName": "companyName",
    "id": "id",
}


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter()
    store = sb.store

    # --- contacts ----------------------------------------------------------------------------
    @api.post("/contacts/upsert")
    async def upsert_contact(request: Request) -> JSONResponse:
        """Create or update a contact, matched by email then phone within the location."""
        caller = await sb.gate(request, "contacts.write")
        body = caller.require_body_object()
        if not body.get("locationId"):
            raise GhlHttpError(422, ["locationId should not be empty"])
        if not body.get("email") and not body.get("phone"):
            raise GhlHttpError(400, "email or phone is required to upsert a contact")
        contact, new = store.upsert_contact(caller.location_id, body)
        return JSONResponse({"new": new, "contact": contact, "traceId": _trace()})

    @api.post("/contacts/search")
    async def search_contacts(request: Request) -> JSONResponse:
        """Advanced search: `filters: [{field, operator: eq|contains, value}]`, `query`, paging
        with `page` and `pageLimit`. Answers `{contacts, total}`."""
        caller = await sb.gate(request, "contacts.readonly")
        body = caller.require_body_object()
        if not body.get("locationId"):
            raise GhlHttpError(422, ["locationId should not be empty"])
        found = [
            c
            for c in store.contacts.values()
            if c["locationId"] == caller.location_id
            and _matches(c, body.get("filters") or [], body.get("query"))
        ]
        size = int(body.get("pageLimit") or 20)
        start = (max(int(body.get("page") or 1), 1) - 1) * size
        return JSONResponse({"contacts": found[start : start + size], "total": len(found)})

    @api.get("/contacts/search/duplicate")
    async def duplicate_contact(request: Request) -> JSONResponse:
        """The contact an upsert with this email / number would update, or null."""
        caller = await sb.gate(request, "contacts.readonly")
        caller.require_query("locationId")
        contact = store.find_contact(
            caller.location_id, email=caller.query("email"), phone=caller.query("number")
        )
        return JSONResponse({"contact": contact})

    @api.get("/contacts/")
    @api.get("/contacts")
    async def list_contacts(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "contacts.readonly")
        caller.require_query("locationId")
        found = [
            c
            for c in store.contacts.values()
            if c["locationId"] == caller.location_id and _matches(c, [], caller.query("query"))
        ]
        return JSONResponse(
            {"contacts": page(found, caller.query("limit"), 0, 20), "count": len(found)}
        )

    @api.get("/contacts/{contact_id}")
    async def get_contact(request: Request, contact_id: str) -> JSONResponse:
        owner = store.contacts.get(contact_id, {}).get("locationId")
        caller = await sb.gate(request, "contacts.readonly", owner=owner)
        contact = store.owned("contacts", contact_id, caller.location_id)
        if contact is None:
            raise not_found("Contact", contact_id)
        return JSONResponse({"contact": contact})

    # --- products and prices ------------------------------------------------------------------
    @api.get("/products/")
    @api.get("/products")
    async def list_products(request: Request) -> JSONResponse:
        caller = await sb.gate(request, "products.readonly", agency=True)
        caller.require_query("locationId")
        found = [p for p in store.products.values() if p["locationId"] == caller.location_id]
        return JSONResponse(
            {
                "products": page(found, caller.query("limit"), caller.query("offset"), 100),
                "total": [{"total": len(found)}],
            }
        )

    @api.get("/products/{product_id}")
    async def get_product(request: Request, product_id: str) -> JSONResponse:
        caller = await sb.gate(request, "products.readonly", agency=True)
        caller.require_query("locationId")
        return JSONResponse(_product(product_id, caller.location_id))

    @api.get("/products/{product_id}/price")
    async def list_prices(request: Request, product_id: str) -> JSONResponse:
        caller = await sb.gate(request, "products/prices.readonly", agency=True)
        caller.require_query("locationId")
        _product(product_id, caller.location_id)
        wanted = {i for i in (caller.query("ids") or "").split(",") if i}
        prices = [
            p
            for p in store.prices.values()
            if p["product"] == product_id and (not wanted or p["_id"] in wanted)
        ]
        return JSONResponse(
            {
                "prices": page(prices, caller.query("limit"), caller.query("offset"), 0),
                "total": len(prices),
            }
        )

    @api.get("/products/{product_id}/price/{price_id}")
    async def get_price(request: Request, product_id: str, price_id: str) -> JSONResponse:
        caller = await sb.gate(request, "products/prices.readonly", agency=True)
        caller.require_query("locationId")
        _product(product_id, caller.location_id)
        price = store.owned("prices", price_id, caller.location_id)
        if price is None or price["product"] != product_id:
            raise not_found("Price", price_id)
        return JSONResponse(price)

    def _product(product_id: str, location_id: str) -> Doc:
        product = store.owned("products", product_id, location_id)
        if product is None:
            raise not_found("Product", product_id)
        return product

    return api


def _matches(contact: Doc, filters: list[Any], query: Any) -> bool:
    if isinstance(query, str) and query:
        text = query.lower()
        if not any(
            text in str(contact.get(k, "")).lower()
            for k in ("name", "email", "phone", "companyName")
        ):
            return False
    for item in filters:
        if not isinstance(item, dict):
            continue
        if "filters" in item:  # a nested group: AND of its filters (enough for a sandbox)
            if not _matches(contact, item["filters"], None):
                return False
            continue
        key = _SEARCH_FIELDS.get(str(item.get("field")), str(item.get("field")))
        have = str(contact.get(key, ""))
        want = str(item.get("value", ""))
        if key == "emailLowerCase":
            want = want.lower()
        operator = item.get("operator", "eq")
        if operator == "eq" and have != want:
            return False
        if operator == "contains" and want.lower() not in have.lower():
            return False
    return True


def _trace() -> str:
    import secrets

    return secrets.token_hex(16)
