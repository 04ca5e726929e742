"""The typed GHL API client: one method per call the service makes, every call location-scoped.

Built once in the lifespan around the shared `httpx.AsyncClient`. Payments and invoices name the
location as `altId` + `altType=location` (query for reads, body for writes); contacts and
products as `locationId`. OAuth token calls live in `wizesync.ghl.oauth`, not here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from wizesync.ghl import models as m
from wizesync.ghl.errors import GhlError
from wizesync.ghl.limits import RateLimiter, TokenProvider
from wizesync.ghl.models.base import LocationScoped, Page
from wizesync.ghl.paging import DEFAULT_PAGE_SIZE, paginate
from wizesync.ghl.transport import DEFAULT_TIMEOUT, GhlTransport, Sleep, checked_id

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class GhlClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        version: str,
        tokens: TokenProvider,
        limiter: RateLimiter,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        max_rate_limit_wait: float = 30.0,
        sleep: Sleep | None = None,
    ) -> None:
        self._transport = GhlTransport(
            http,
            base_url=base_url,
            version=version,
            tokens=tokens,
            limiter=limiter,
            timeout=timeout,
            max_attempts=max_attempts,
            max_rate_limit_wait=max_rate_limit_wait,
            sleep=sleep,
        )

    # --- white-label payment providers -----------------------------------------------------------
    async def list_whitelabel_providers(
        self, location_id: str, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> Page[m.WhitelabelProvider]:
        answer = await self._get(
            location_id,
            "/payments/integrations/provider/whitelabel",
            m.WhitelabelProviderList,
            _alt(location_id, limit=limit, offset=offset),
        )
        return Page(items=answer.as_list())

    async def register_whitelabel_provider(
        self, location_id: str, body: m.RegisterWhitelabelProvider
    ) -> m.WhitelabelProvider:
        return await self._post(
            location_id,
            "/payments/integrations/provider/whitelabel",
            m.WhitelabelProvider,
            _scoped(body, location_id),
        )

    # --- orders and fulfillments -----------------------------------------------------------------
    async def list_orders(
        self,
        location_id: str,
        *,
        status: str | None = None,
        payment_status: str | None = None,
        payment_mode: str | None = None,
        start_at: date | datetime | str | None = None,
        end_at: date | datetime | str | None = None,
        search: str | None = None,
        contact_id: str | None = None,
        source_id: str | None = None,
        funnel_product_ids: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Page[m.Order]:
        query = _alt(
            location_id,
            status=status,
            payment_status=payment_status,
            payment_mode=payment_mode,
            start_at=start_at,
            end_at=end_at,
            search=search,
            contact_id=contact_id,
            source_id=source_id,
            funnel_product_ids=funnel_product_ids,
            limit=limit,
            offset=offset,
        )
        answer = await self._get(location_id, "/payments/orders", m.OrderList, query)
        return Page(items=answer.data, total=answer.total_count)

    async def get_order(self, location_id: str, order_id: str) -> m.Order:
        path = f"/payments/orders/{checked_id(order_id, 'order id')}"
        return await self._get(location_id, path, m.Order, _alt(location_id))

    async def list_fulfillments(self, location_id: str, order_id: str) -> list[m.Fulfillment]:
        path = f"/payments/orders/{checked_id(order_id, 'order id')}/fulfillments"
        answer = await self._get(location_id, path, m.FulfillmentList, _alt(location_id))
        return answer.data

    async def create_fulfillment(
        self, location_id: str, order_id: str, body: m.CreateFulfillment
    ) -> m.Fulfillment:
        """Never retried on 5xx/timeout: call `list_fulfillments` before trying again."""
        path = f"/payments/orders/{checked_id(order_id, 'order id')}/fulfillments"
        answer = await self._post(
            location_id, path, m.CreateFulfillmentResult, _scoped(body, location_id)
        )
        return answer.data

    async def record_order_payment(
        self, location_id: str, order_id: str, body: m.RecordOrderPayment
    ) -> bool:
        path = f"/payments/orders/{checked_id(order_id, 'order id')}/record-payment"
        answer = await self._post(
            location_id, path, m.RecordOrderPaymentResult, _scoped(body, location_id)
        )
        return answer.success

    # --- transactions and subscriptions ----------------------------------------------------------
    async def list_transactions(
        self,
        location_id: str,
        *,
        entity_id: str | None = None,
        subscription_id: str | None = None,
        contact_id: str | None = None,
        payment_mode: str | None = None,
        entity_source_type: str | None = None,
        start_at: date | datetime | str | None = None,
        end_at: date | datetime | str | None = None,
        search: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Page[m.Transaction]:
        """`entity_id` is an order or invoice id: an order carries no transaction id itself."""
        query = _alt(
            location_id,
            entity_id=entity_id,
            subscription_id=subscription_id,
            contact_id=contact_id,
            payment_mode=payment_mode,
            entity_source_type=entity_source_type,
            start_at=start_at,
            end_at=end_at,
            search=search,
            limit=limit,
            offset=offset,
        )
        answer = await self._get(location_id, "/payments/transactions", m.TransactionList, query)
        return Page(items=answer.data, total=answer.total_count)

    async def get_transaction(self, location_id: str, transaction_id: str) -> m.Transaction:
        path = f"/payments/transactions/{checked_id(transaction_id, 'transaction id')}"
        return await self._get(location_id, path, m.Transaction, _alt(location_id))

    async def list_subscriptions(
        self,
        location_id: str,
        *,
        entity_id: str | None = None,
        contact_id: str | None = None,
        id: str | None = None,  # the spec's query name
        payment_mode: str | None = None,
        entity_source_type: str | None = None,
        start_at: date | datetime | str | None = None,
        end_at: date | datetime | str | None = None,
        search: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Page[m.Subscription]:
        query = _alt(
            location_id,
            entity_id=entity_id,
            contact_id=contact_id,
            id=id,
            payment_mode=payment_mode,
            entity_source_type=entity_source_type,
            start_at=start_at,
            end_at=end_at,
            search=search,
            limit=limit,
            offset=offset,
        )
        answer = await self._get(location_id, "/payments/subscriptions", m.SubscriptionList, query)
        return Page(items=answer.data, total=answer.total_count)

    async def get_subscription(self, location_id: str, subscription_id: str) -> m.Subscription:
        path = f"/payments/subscriptions/{checked_id(subscription_id, 'subscription id')}"
        return await self._get(location_id, path, m.Subscription, _alt(location_id))

    # --- invoices --------------------------------------------------------------------------------
    async def create_invoice(self, location_id: str, body: m.CreateInvoice) -> m.Invoice:
        """Never retried on 5xx/timeout: look with `list_invoices` before creating again."""
        return await self._post(location_id, "/invoices/", m.Invoice, _scoped(body, location_id))

    async def get_invoice(self, location_id: str, invoice_id: str) -> m.Invoice:
        path = f"/invoices/{checked_id(invoice_id, 'invoice id')}"
        return await self._get(location_id, path, m.Invoice, _alt(location_id))

    async def record_invoice_payment(
        self, location_id: str, invoice_id: str, body: m.RecordInvoicePayment
    ) -> m.RecordInvoicePaymentResult:
        path = f"/invoices/{checked_id(invoice_id, 'invoice id')}/record-payment"
        return await self._post(
            location_id, path, m.RecordInvoicePaymentResult, _scoped(body, location_id)
        )

    async def void_invoice(self, location_id: str, invoice_id: str) -> m.Invoice:
        path = f"/invoices/{checked_id(invoice_id, 'invoice id')}/void"
        return await self._post(location_id, path, m.Invoice, _scoped(m.VoidInvoice(), location_id))

    async def list_invoices(
        self,
        location_id: str,
        *,
        status: str | None = None,
        contact_id: str | None = None,
        payment_mode: str | None = None,
        start_at: date | datetime | str | None = None,
        end_at: date | datetime | str | None = None,
        search: str | None = None,
        sort_field: str | None = None,
        sort_order: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Page[m.Invoice]:
        query = _alt(
            location_id,
            status=status,
            contact_id=contact_id,
            payment_mode=payment_mode,
            start_at=start_at,
            end_at=end_at,
            search=search,
            sort_field=sort_field,
            sort_order=sort_order,
            limit=limit,
            offset=offset,
        )
        answer = await self._get(location_id, "/invoices/", m.InvoiceList, query)
        return Page(items=answer.invoices, total=answer.total)

    # --- contacts --------------------------------------------------------------------------------
    async def upsert_contact(
        self, location_id: str, body: m.UpsertContact
    ) -> m.UpsertContactResult:
        payload = _located(body, location_id)
        return await self._post(location_id, "/contacts/upsert", m.UpsertContactResult, payload)

    async def search_contacts(
        self, location_id: str, body: m.SearchContacts
    ) -> m.ContactSearchResult:
        """Advanced search: a POST that only reads, so it is retried like a GET."""
        payload = _located(body, location_id)
        return await self._post(
            location_id, "/contacts/search", m.ContactSearchResult, payload, read_only=True
        )

    async def find_contact_by_email(self, location_id: str, email: str) -> m.Contact | None:
        """The contact GHL's duplicate rules match for this email, or None."""
        query = {"locationId": location_id, "email": email}
        answer = await self._get(
            location_id, "/contacts/search/duplicate", m.DuplicateContactResult, query
        )
        return answer.contact

    # --- products and prices ---------------------------------------------------------------------
    async def get_product(self, location_id: str, product_id: str) -> m.Product:
        path = f"/products/{checked_id(product_id, 'product id')}"
        return await self._get(location_id, path, m.Product, {"locationId": location_id})

    async def list_products(
        self, location_id: str, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> Page[m.Product]:
        query = _params(location_id=location_id, limit=limit, offset=offset)
        answer = await self._get(location_id, "/products/", m.ProductList, query)
        return Page(items=answer.products, total=answer.count)

    async def list_prices(
        self,
        location_id: str,
        product_id: str,
        *,
        ids: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Page[m.Price]:
        path = f"/products/{checked_id(product_id, 'product id')}/price"
        query = _params(location_id=location_id, ids=ids, limit=limit, offset=offset)
        answer = await self._get(location_id, path, m.PriceList, query)
        return Page(items=answer.prices, total=answer.total)

    async def get_price(self, location_id: str, product_id: str, price_id: str) -> m.Price:
        path = (
            f"/products/{checked_id(product_id, 'product id')}"
            f"/price/{checked_id(price_id, 'price id')}"
        )
        return await self._get(location_id, path, m.Price, {"locationId": location_id})

    # --- iterators over every page ---------------------------------------------------------------
    def iter_orders(self, location_id: str, **filters: Any) -> AsyncIterator[m.Order]:
        return self._iterate(self.list_orders, location_id, (), filters)

    def iter_transactions(self, location_id: str, **filters: Any) -> AsyncIterator[m.Transaction]:
        return self._iterate(self.list_transactions, location_id, (), filters)

    def iter_subscriptions(self, location_id: str, **filters: Any) -> AsyncIterator[m.Subscription]:
        return self._iterate(self.list_subscriptions, location_id, (), filters)

    def iter_invoices(self, location_id: str, **filters: Any) -> AsyncIterator[m.Invoice]:
        return self._iterate(self.list_invoices, location_id, (), filters)

    def iter_products(self, location_id: str, **filters: Any) -> AsyncIterator[m.Product]:
        return self._iterate(self.list_products, location_id, (), filters)

    def iter_prices(
        self, location_id: str, product_id: str, **filters: Any
    ) -> AsyncIterator[m.Price]:
        return self._iterate(self.list_prices, location_id, (product_id,), filters)

    def iter_whitelabel_providers(
        self, location_id: str, **filters: Any
    ) -> AsyncIterator[m.WhitelabelProvider]:
        return self._iterate(self.list_whitelabel_providers, location_id, (), filters)

    # --- plumbing --------------------------------------------------------------------------------
    def _iterate(
        self,
        list_call: Callable[..., Awaitable[Page[T]]],
        location_id: str,
        args: tuple[Any, ...],
        filters: dict[str, Any],
    ) -> AsyncIterator[T]:
        page_size = filters.pop("page_size", DEFAULT_PAGE_SIZE)
        max_items = filters.pop("max_items", None)

        def fetch(limit: int, offset: int) -> Awaitable[Page[T]]:
            return list_call(location_id, *args, limit=limit, offset=offset, **filters)

        return paginate(fetch, page_size=page_size, max_items=max_items)

    async def _get(self, location_id: str, path: str, model: type[M], query: dict[str, Any]) -> M:
        response = await self._transport.request(
            location_id, "GET", path, params=query, read_only=True
        )
        return _parse(model, response)

    async def _post(
        self,
        location_id: str,
        path: str,
        model: type[M],
        body: dict[str, Any],
        *,
        read_only: bool = False,
    ) -> M:
        response = await self._transport.request(
            location_id, "POST", path, json=body, read_only=read_only
        )
        return _parse(model, response)


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content or b"{}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise GhlError(
            f"unexpected answer from {response.request.method} {response.request.url.path}: "
            f"{problems}",
            status=response.status_code,
        ) from exc


def _params(**values: Any) -> dict[str, Any]:
    """camelCase query parameters, `None` left out, dates as ISO strings."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        head, *rest = key.split("_")
        name = head + "".join(part.capitalize() for part in rest)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, date | datetime):
            value = value.isoformat()
        out[name] = value
    return out


def _alt(location_id: str, **values: Any) -> dict[str, Any]:
    """Payments/invoices reads: the location as `altId` + `altType=location`."""
    return {"altId": location_id, "altType": "location", **_params(**values)}


def _scoped(body: LocationScoped, location_id: str) -> dict[str, Any]:
    """Payments/invoices writes: the location as `altId` + `altType` in the body."""
    if body.alt_id not in (None, location_id):
        raise ValueError(f"body is for location {body.alt_id}, the call for {location_id}")
    return body.model_copy(update={"alt_id": location_id}).to_body()


def _located(body: m.UpsertContact | m.SearchContacts, location_id: str) -> dict[str, Any]:
    """Contacts: the location as `locationId` in the body."""
    if body.location_id not in (None, location_id):
        raise ValueError(f"body is for location {body.location_id}, the call for {location_id}")
    return body.model_copy(update={"location_id": location_id}).to_body()
