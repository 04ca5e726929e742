"""The fake Wizehire API (the contract's "Service -> Wizehire" part), mounted at `/wizehire`.

- `PATCH /v1/orders/{order_id}/sync`, `PATCH /v1/refunds/{refund_id}`: validated against the
  contract (422 with `errors: [{loc, msg}]`), and idempotent per `Idempotency-Key` (IETF draft
  semantics: the same key and request replays the stored answer with no second effect and
  `Idempotent-Replayed: true`; the same key with another request is 422; a write without a key is
  400 unless `wizehire_require_idempotency_key` is off).
- `GET /v1/orders?updated_since=&cursor=&limit=` -> `{data, next_cursor}`.
- `POST /oauth/token` (client credentials) for the service's OAuth2 mode.
- Bearer auth: the configured `wizehire_api_key` or a client-credentials token; with no key
  configured any non-empty bearer is accepted.
Every request is recorded (method, path, query, headers, body, answer) for the control plane.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wizesync_sandbox.clock import parse_moment
from wizesync_sandbox.wizehire_state import BadCursor, StoredAnswer

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox

PAYMENT_STATUSES = ("pending", "paid", "partially_refunded", "refunded", "failed", "cancelled")
REFUND_STATUSES = ("pending", "manual_action_required", "succeeded", "failed")
GATEWAYS = ("stripe", "nmi", "authorize_net")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
Errors = list[dict[str, Any]]


class WizehireError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        errors: Errors | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": error, "message": message}
        if errors:
            self.body["errors"] = errors
        self.headers = headers or {}


def create_wizehire_app(sb: Sandbox) -> FastAPI:
    app = FastAPI(
        title="wizesync sandbox: fake Wizehire API", openapi_url=None, docs_url=None, redoc_url=None
    )
    state = sb.wizehire

    @app.exception_handler(WizehireError)
    async def wizehire_error(request: Request, exc: WizehireError) -> JSONResponse:
        _answered(request, exc.status, exc.body)
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {
            "error": "not_found" if exc.status_code == 404 else "http_error",
            "message": str(exc.detail),
        }
        await _record(request)
        _answered(request, exc.status_code, body)
        return JSONResponse(body, status_code=exc.status_code)

    async def _record(request: Request) -> dict[str, Any]:
        if "wizehire_call" in request.scope.setdefault("state", {}):
            return request.scope["state"]["wizehire_call"]
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        call = state.record(
            {
                "method": request.method,
                "path": request.url.path.removeprefix(request.scope.get("root_path", "")),
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "idempotency_key": request.headers.get("idempotency-key"),
                "body": body,
            }
        )
        request.scope["state"]["wizehire_call"] = call
        return call

    def _authorise(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise WizehireError(401, "unauthorized", "a bearer token is required")
        key = sb.config.wizehire_api_key
        if key and token != key and token not in state.access_tokens:
            raise WizehireError(401, "unauthorized", "the bearer token is not valid")

    async def _write(
        request: Request,
        validate: Callable[[Any], Errors],
        effect: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> JSONResponse:
        call = await _record(request)
        _authorise(request)
        key = request.headers.get("idempotency-key")
        if not key and sb.config.wizehire_require_idempotency_key:
            raise WizehireError(
                400, "idempotency_key_required", "every write needs an Idempotency-Key header"
            )
        fingerprint = hashlib.sha256(
            f"{request.method} {call['path']} ".encode() + await request.body()
        ).hexdigest()
        if key and key in state.answers:
            stored = state.answers[key]
            if stored.fingerprint != fingerprint:
                raise WizehireError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                )
            call["replayed"] = True
            _answered(request, stored.status, stored.body)
            return JSONResponse(
                stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"}
            )
        body = call["body"]
        errors = validate(body)
        if errors:
            status, answer = (
                422,
                {
                    "error": "validation_error",
                    "message": "the request body is not valid",
                    "errors": errors,
                },
            )
        else:
            status, answer = 200, effect(body)
        if key:
            state.answers[key] = StoredAnswer(fingerprint, status, answer)
        _answered(request, status, answer)
        return JSONResponse(answer, status_code=status)

    @app.patch("/v1/orders/{order_id}/sync")
    async def sync_order(request: Request, order_id: str) -> JSONResponse:
        """The service tells Wizehire where an order stands in GHL."""
        return await _write(
            request, validate_sync, lambda body: _public_order(state.apply_sync(order_id, body))
        )

    @app.patch("/v1/refunds/{refund_id}")
    async def update_refund(request: Request, refund_id: str) -> JSONResponse:
        """The service reports a refund's progress."""
        return await _write(
            request, validate_refund, lambda body: state.apply_refund(refund_id, body)
        )

    @app.get("/v1/orders")
    async def list_orders(request: Request) -> JSONResponse:
        """Wizehire's orders changed since `updated_since`, oldest first, cursor-paged."""
        await _record(request)
        _authorise(request)
        q = request.query_params
        since = parse_moment(q["updated_since"]) if q.get("updated_since") else None
        if q.get("updated_since") and since is None:
            raise WizehireError(
                422,
                "validation_error",
                "updated_since is not an ISO timestamp",
                [{"loc": ["query", "updated_since"], "msg": "not ISO-8601"}],
            )
        try:
            limit = min(max(int(q.get("limit") or 50), 1), 200)
        except ValueError:
            raise WizehireError(
                422,
                "validation_error",
                "limit must be an integer",
                [{"loc": ["query", "limit"], "msg": "not an integer"}],
            ) from None
        try:
            data, cursor = state.list_orders(since, q.get("cursor"), limit)
        except BadCursor as exc:
            raise WizehireError(400, "bad_cursor", str(exc)) from None
        answer = {"data": [_public_order(d) for d in data], "next_cursor": cursor}
        _answered(request, 200, answer)
        return JSONResponse(answer)

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        """OAuth2 client credentials (the service's WIZEHIRE_TOKEN_URL mode)."""
        await _record(request)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            raise WizehireError(400, "unsupported_grant_type", "only client_credentials")
        has_basic = request.headers.get("authorization", "").lower().startswith("basic ")
        if not has_basic and not (form.get("client_id") and form.get("client_secret")):
            raise WizehireError(401, "invalid_client", "client credentials are required")
        value = f"sbx_wh_{secrets.token_urlsafe(24)}"
        state.access_tokens.add(value)
        answer = {"access_token": value, "token_type": "Bearer", "expires_in": 3600}
        _answered(request, 200, answer)
        return JSONResponse(answer)

    return app


def _answered(request: Request, status: int, body: Any) -> None:
    call = request.scope.get("state", {}).get("wizehire_call")
    if call is not None:
        call["response"] = {"status": status, "body": body}


def _public_order(order: dict[str, Any]) -> dict[str, Any]:
    """The order as Wizehire's API shows it: `sync` is the PATCH bodies merged in order (also
    kept under its first name, `ghl_sync`, for callers written before the contract named it)."""
    public = dict(order)
    public["sync"] = order.get("ghl_sync")
    return public


# --- validation of the contract's bodies ---------------------------------------------------------
def validate_sync(body: Any) -> Errors:
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "must be a JSON object"}]
    errors: Errors = []
    if body.get("payment_status") not in PAYMENT_STATUSES:
        errors.append(_err("payment_status", "must be one of " + ", ".join(PAYMENT_STATUSES)))
    for name in ("amount_paid", "amount_refunded"):
        if name in body and body[name] is not None and not _is_amount(body[name]):
            errors.append(_err(name, "must be a decimal amount (string or number) >= 0"))
    if body.get("currency") is not None and not _CURRENCY.match(str(body["currency"])):
        errors.append(_err("currency", "must be a 3-letter uppercase ISO code"))
    ids = body.get("ghl_transaction_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        errors.append(_err("ghl_transaction_ids", "must be a list of strings"))
    for name in ("ghl_location_id", "ghl_order_id", "ghl_invoice_id", "ghl_fulfillment_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors.append(_err(name, "must be a string or null"))
    sub = body.get("subscription")
    if sub is not None:
        if not isinstance(sub, dict):
            errors.append(_err("subscription", "must be an object or null"))
        else:
            if not isinstance(sub.get("ghl_subscription_id"), str):
                errors.append(_err("subscription.ghl_subscription_id", "must be a string"))
            if not isinstance(sub.get("status"), str):
                errors.append(_err("subscription.status", "must be a string"))
            for name in ("next_charge_at", "canceled_at"):
                if sub.get(name) is not None and not _is_time(sub[name]):
                    errors.append(_err(f"subscription.{name}", "must be ISO-8601 or null"))
    if body.get("synced_at") is not None and not _is_time(body["synced_at"]):
        errors.append(_err("synced_at", "must be ISO-8601"))
    return errors


def validate_refund(body: Any) -> Errors:
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "must be a JSON object"}]
    errors: Errors = []
    if body.get("status") not in REFUND_STATUSES:
        errors.append(_err("status", "must be one of " + ", ".join(REFUND_STATUSES)))
    if body.get("amount") is not None and not _is_amount(body["amount"]):
        errors.append(_err("amount", "must be a decimal amount (string or number) >= 0"))
    if body.get("currency") is not None and not _CURRENCY.match(str(body["currency"])):
        errors.append(_err("currency", "must be a 3-letter uppercase ISO code"))
    for name in ("ghl_transaction_id", "failure_reason"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors.append(_err(name, "must be a string or null"))
    if body.get("processed_at") is not None and not _is_time(body["processed_at"]):
        errors.append(_err("processed_at", "must be ISO-8601 or null"))
    errors += _validate_gateway(body)
    return errors


def _validate_gateway(body: dict[str, Any]) -> Errors:
    """`gateway` names who moved the money: absent for manual, one of the contract's names."""
    errors: Errors = []
    gateway, refund_id = body.get("gateway"), body.get("gateway_refund_id")
    if gateway is not None and gateway not in GATEWAYS:
        errors.append(_err("gateway", "must be one of " + ", ".join(GATEWAYS) + " or absent"))
    if gateway is not None and body.get("status") == "manual_action_required":
        errors.append(_err("gateway", "must be absent for manual_action_required"))
    if refund_id is not None and not isinstance(refund_id, str):
        errors.append(_err("gateway_refund_id", "must be a string"))
    if refund_id is not None and gateway is None:
        errors.append(_err("gateway_refund_id", "needs the gateway it belongs to"))
    return errors


def _err(field: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", *field.split(".")], "msg": msg}


def _is_amount(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return False
    return amount.is_finite() and amount >= 0


def _is_time(value: Any) -> bool:
    return isinstance(value, str) and parse_moment(value) is not None
