"""The Wizehire API the service calls, documented in the service's own OpenAPI.

OpenAPI 3.1 `webhooks` describe requests an API *sends* rather than receives; each entry here is
keyed by the path on `WIZEHIRE_API_URL` and carries the same models the client sends, so the
document cannot drift from the code. The handlers below are never routed or called.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from wizesync.wizehire.models import OrderSync, RefundUpdate, WizehireOrdersPage

TAG = "Wizehire API (called by the service)"

_bearer = HTTPBearer(
    scheme_name="WizehireBearer",
    description="WIZEHIRE_API_KEY, or an access token from WIZEHIRE_TOKEN_URL (OAuth2 client "
    "credentials, fetched once and reused until it expires).",
    auto_error=False,
)
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        description="Deterministic per write (inbox event id + step): a retried or replayed write "
        "sends the same key and body, and Wizehire performs it at most once.",
        min_length=1,
        max_length=255,
    ),
]


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class WizehireProblem(BaseModel):
    """The error body the client reads: RFC 9457 (`title`, `detail`) or `{error, message}`."""

    detail: str | None = None
    message: str | None = None
    error: str | None = None
    errors: list[FieldError] = []


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": WizehireProblem,
        "description": "Bad credentials. With OAuth2 the service "
        "fetches a new token once and sends again; with an API key it gives up.",
    },
    404: {"model": WizehireProblem, "description": "Unknown id. Not retried."},
    409: {
        "model": WizehireProblem,
        "description": "The same Idempotency-Key is still being processed. Retried.",
    },
    422: {
        "model": WizehireProblem,
        "description": "Invalid body (field errors in `errors`), or "
        "the Idempotency-Key was used for another body. Not retried.",
    },
    429: {
        "model": WizehireProblem,
        "description": "Too many requests. Retried after "
        "`Retry-After`; a longer wait reschedules the event instead.",
    },
    503: {
        "model": WizehireProblem,
        "description": "Any 5xx, a timeout or a lost connection: "
        "retried with backoff (same key, same body).",
    },
}


class WriteAnswer(BaseModel):
    """Wizehire's answer to a write (its current record); replays carry `Idempotent-Replayed`."""

    model_config = {"extra": "allow"}


def document_wizehire_api(app: FastAPI) -> None:
    """Add the Wizehire API to `app`'s OpenAPI document, under `webhooks`."""
    hooks: APIRouter = app.webhooks
    security = [Depends(_bearer)]

    @hooks.patch(
        "/v1/orders/{order_id}/sync",
        tags=[TAG],
        dependencies=security,
        response_model=WriteAnswer,
        responses=_ERRORS,
        summary="Wizehire: record where an order stands in GHL",
    )
    def wizehire_order_sync(
        order_id: Annotated[str, Path(description="The Wizehire order id, e.g. wh_ord_1001")],
        body: OrderSync,
        idempotency_key: IdempotencyKey,
    ) -> None:
        """Sent after each step of the order flow, and whenever GHL's payment state of the order
        changes (payments, refunds, subscription). Amounts are decimal strings ("149.00"),
        moments ISO-8601 UTC; every field is sent, `null` when unknown."""

    @hooks.patch(
        "/v1/refunds/{refund_id}",
        tags=[TAG],
        dependencies=security,
        response_model=WriteAnswer,
        responses=_ERRORS,
        summary="Wizehire: report a refund's progress",
    )
    def wizehire_refund_update(
        refund_id: Annotated[str, Path(description="The Wizehire refund id, e.g. wh_ref_77")],
        body: RefundUpdate,
        idempotency_key: IdempotencyKey,
    ) -> None:
        """`failed` with `failure_reason` in words when the refund is refused (unknown order,
        currency mismatch, more than is refundable) or a gateway declined it;
        `manual_action_required` (with the reason in `failure_reason`) while a human refunds in
        the payment provider; `succeeded` once a gateway made the refund (`gateway`,
        `gateway_refund_id`; `pending` while it settles) or GHL shows it. `gateway` and
        `gateway_refund_id` are absent when no gateway moved the money."""

    @hooks.get(
        "/v1/orders",
        tags=[TAG],
        dependencies=security,
        response_model=WizehireOrdersPage,
        responses=_ERRORS,
        summary="Wizehire: orders changed since a moment (reconciliation)",
    )
    def wizehire_list_orders(
        updated_since: Annotated[datetime, Query(description="ISO-8601 UTC")],
        cursor: Annotated[
            str | None, Query(description="`next_cursor` of the previous page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> None:
        """Read page by page, following `next_cursor` until it is null."""
