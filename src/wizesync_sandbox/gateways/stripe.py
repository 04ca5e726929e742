"""Fake Stripe at `/stripe`: `POST /v1/refunds` and `GET /v1/refunds`, as Stripe answers them.

Bearer secret key; form-encoded bodies (`metadata[key]=value`); amounts in minor units by
Stripe's currency rules; `Idempotency-Key`: a repeat with the same parameters gets the first
answer again (`Idempotent-Replayed: true`), different parameters a 400 `idempotency_error`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wizesync.flows.refunds.gateways._minor_units import (
    AmountNotRepresentable,
    exponent,
    from_minor_units,
    to_minor_units,
)
from wizesync_sandbox.gateways import Declined, GatewayFakes, GatewayRefundDoc

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox

NAME = "stripe"


def router(sb: Sandbox, fakes: GatewayFakes) -> APIRouter:
    api = APIRouter(prefix="/stripe/v1", tags=["fake Stripe"])

    def authorized(request: Request) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if fakes.accepts(key):
            return None
        return _error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided: " + (key[:7] + "***" if key else "(none)"),
        )

    @api.post("/refunds")
    async def create_refund(request: Request) -> JSONResponse:
        refused = authorized(request)
        if refused is not None:
            return refused
        params = _form(await request.body())
        key = request.headers.get("idempotency-key")
        if key:
            seen = fakes.idempotency.get(f"{NAME}:{key}")
            if seen is not None:
                fingerprint, status, body = seen
                if fingerprint != params:
                    return _error(
                        400,
                        "idempotency_error",
                        None,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    )
                return JSONResponse(
                    body, status_code=status, headers={"Idempotent-Replayed": "true"}
                )
        status, body = _create(fakes, params)
        if key and status < 500:
            fakes.idempotency[f"{NAME}:{key}"] = (params, status, body)
        if status == 200:
            lost = await fakes.answer_lost(NAME)
            if lost is not None:
                return lost
        return JSONResponse(body, status_code=status)

    @api.get("/refunds")
    async def list_refunds(request: Request) -> JSONResponse:
        refused = authorized(request)
        if refused is not None:
            return refused
        charge = request.query_params.get("charge")
        limit = int(request.query_params.get("limit", "10"))
        docs = [r for r in fakes.of(NAME, charge)][::-1][:limit]
        return JSONResponse(
            {
                "object": "list",
                "url": "/v1/refunds",
                "has_more": False,
                "data": [_refund(r) for r in docs],
            }
        )

    return api


def _create(fakes: GatewayFakes, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    charge = params.get("charge") or params.get("payment_intent")
    if not charge:
        return 400, _body(
            "invalid_request_error",
            "parameter_missing",
            "One of charge or payment_intent is required.",
        )
    txn = fakes.transaction(charge)
    if txn is None:
        return 404, _body(
            "invalid_request_error", "resource_missing", f"No such charge: '{charge}'"
        )
    currency = str(txn["currency"])
    amount = None
    if "amount" in params:
        try:
            minor = int(params["amount"])
            amount = from_minor_units(minor, currency)
            to_minor_units(amount, currency)  # Stripe's multiple-of-10 rule and the like
        except (ValueError, AmountNotRepresentable) as exc:
            return 400, _body("invalid_request_error", "invalid_amount", str(exc))
    metadata = params.get("metadata") or {}
    try:
        doc = fakes.refund(
            NAME,
            charge,
            amount,
            tag=metadata.get("wizehire_refund_id"),
            prefix="re_",
            meta={"metadata": metadata, "reason": params.get("reason")},
        )
    except Declined as exc:
        code = "amount_too_large" if "exceeds" in exc.reason else "charge_disputed"
        return 400, _body("invalid_request_error", code, exc.reason)
    return 200, _refund(doc)


def _refund(doc: GatewayRefundDoc) -> dict[str, Any]:
    return {
        "id": doc.id,
        "object": "refund",
        "amount": int(doc.amount.scaleb(exponent(doc.currency))),
        "charge": doc.charge_id,
        "currency": doc.currency.lower(),
        "created": int(time.time()),
        "metadata": doc.meta.get("metadata") or {},
        "reason": doc.meta.get("reason"),
        "status": "succeeded",
        "payment_intent": None,
    }


def _form(raw: bytes) -> dict[str, Any]:
    """Stripe's form encoding: `metadata[key]=value` nests one level."""
    params: dict[str, Any] = {}
    for name, value in parse_qsl(raw.decode(), keep_blank_values=True):
        if "[" in name and name.endswith("]"):
            outer, inner = name[:-1].split("[", 1)
            params.setdefault(outer, {})[inner] = value
        else:
            params[name] = value
    return params


def _body(kind: str, code: str | None, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": message}}


def _error(status: int, kind: str, code: str | None, message: str) -> JSONResponse:
    return JSONResponse(_body(kind, code, message), status_code=status)
