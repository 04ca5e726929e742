"""Fake Authorize.net at `/authorize_net/xml/v1/request.api`: its JSON API, answers starting
with a UTF-8 byte order mark like the real one.

Requests: `authenticateTestRequest`, `getTransactionDetailsRequest`,
`getUnsettledTransactionListRequest`, `getSettledBatchListRequest`,
`getTransactionListRequest`, `createTransactionRequest` with `refundTransaction`
(settled payments only; the card's last four digits must match) or `voidTransaction`
(unsettled payments only, the whole amount). A GHL transaction's `chargeId` is the payment's
`transId`; `POST /_sandbox/gateways/authorize_net/unsettled/{id}` leaves it unsettled and
`POST /_sandbox/gateways/authorize_net/settle` runs a settlement (refunds into a batch,
`getSettledBatchListRequest` / `getTransactionListRequest` list them).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wizesync_sandbox.gateways import Declined, GatewayFakes, GatewayRefundDoc
from wizesync_sandbox.ghl_state import Doc, dec

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox

NAME = "authorize_net"
BOM = b"\xef\xbb\xbf"
CARD = "XXXX1111"


def router(sb: Sandbox, fakes: GatewayFakes) -> APIRouter:
    api = APIRouter(prefix="/authorize_net/xml/v1", tags=["fake Authorize.net"])

    @api.post("/request.api")
    async def request_api(request: Request) -> Response:
        try:
            payload = json.loads((await request.body()).decode("utf-8-sig"))
            ((kind, body),) = payload.items()
        except (ValueError, AttributeError):
            return _answer(_error("E00003", "An error occurred while parsing the request."))
        auth = (body or {}).get("merchantAuthentication") or {}
        if not fakes.accepts(auth.get("name"), auth.get("transactionKey")):
            return _answer(
                _error("E00007", "User authentication failed due to invalid authentication values.")
            )
        handler = {
            "authenticateTestRequest": lambda b: _ok({}),
            "getTransactionDetailsRequest": lambda b: _details(fakes, b),
            "getUnsettledTransactionListRequest": lambda b: _unsettled(fakes),
            "getSettledBatchListRequest": lambda b: _batches(fakes),
            "getTransactionListRequest": lambda b: _batch(fakes, b),
            "createTransactionRequest": lambda b: _create(fakes, b),
        }.get(kind)
        if handler is None:
            return _answer(_error("E00045", f"The root node {kind} is not supported here."))
        answer = handler(body)
        if "refId" in body:
            answer["refId"] = body["refId"]
        if (
            kind == "createTransactionRequest"
            and (answer.get("transactionResponse") or {}).get("responseCode") == "1"
        ):
            lost = await fakes.answer_lost(NAME)
            if lost is not None:
                return lost
        return _answer(answer)

    return api


def status_of(fakes: GatewayFakes, charge_id: str) -> str:
    txn = fakes.transaction(charge_id)
    if txn is None:
        return ""
    if any(r.action == "void" for r in fakes.of(NAME, charge_id)):
        return "voided"
    if charge_id in fakes.unsettled:
        return "capturedPendingSettlement"
    return "settledSuccessfully"


def _details(fakes: GatewayFakes, body: Doc) -> Doc:
    trans_id = str(body.get("transId", ""))
    refund = next((r for r in fakes.of(NAME) if r.id == trans_id), None)
    if refund is not None:
        return _ok({"transaction": _refund_view(refund)})
    txn = fakes.transaction(trans_id)
    if txn is None:
        return _error("E00040", "The record cannot be found.")
    return _ok(
        {
            "transaction": {
                "transId": trans_id,
                "transactionType": "authCaptureTransaction",
                "transactionStatus": status_of(fakes, trans_id),
                "responseCode": 1,
                "authAmount": float(dec(txn["amount"])),
                "settleAmount": float(dec(txn["amount"])),
                "payment": {
                    "creditCard": {"cardNumber": CARD, "expirationDate": "XXXX", "cardType": "Visa"}
                },
            }
        }
    )


def _unsettled(fakes: GatewayFakes) -> Doc:
    return _ok(
        {
            "transactions": [
                _listed(r, "refundPendingSettlement")
                for r in fakes.of(NAME)
                if r.action == "refund" and not r.meta.get("batchId")
            ]
        }
    )


def _batches(fakes: GatewayFakes) -> Doc:
    ids = sorted({str(r.meta["batchId"]) for r in fakes.of(NAME) if r.meta.get("batchId")})
    return _ok(
        {"batchList": [{"batchId": i, "settlementState": "settledSuccessfully"} for i in ids]}
    )


def _batch(fakes: GatewayFakes, body: Doc) -> Doc:
    wanted = str(body.get("batchId"))
    return _ok(
        {
            "transactions": [
                _listed(r, "refundSettledSuccessfully")
                for r in fakes.of(NAME)
                if str(r.meta.get("batchId")) == wanted
            ]
        }
    )


def _listed(doc: GatewayRefundDoc, status: str) -> Doc:
    return {
        "transId": doc.id,
        "transactionStatus": status,
        "invoiceNumber": doc.meta.get("invoiceNumber"),
        "accountType": "Visa",
        "accountNumber": CARD,
        "settleAmount": float(doc.amount),
    }


def settle(fakes: GatewayFakes) -> str:
    """The nightly settlement: unsettled refunds go into a new batch, payments settle."""
    batch = str(9_000_000 + len({r.meta.get("batchId") for r in fakes.of(NAME)}))
    for doc in fakes.of(NAME):
        if doc.action == "refund" and not doc.meta.get("batchId"):
            doc.meta["batchId"] = batch
    fakes.unsettled.clear()
    return batch


def _create(fakes: GatewayFakes, body: Doc) -> Doc:
    request = body.get("transactionRequest") or {}
    kind = request.get("transactionType")
    ref = str(request.get("refTransId") or "")
    if fakes.transaction(ref) is None:
        return _declined("3", "16", "The transaction cannot be found.")
    status = status_of(fakes, ref)
    if kind == "voidTransaction":
        if status != "capturedPendingSettlement":
            return (
                _declined("3", "16", "The transaction cannot be found.")
                if status == "voided"
                else _declined("3", "16", "The transaction cannot be voided: it has settled.")
            )
        return _transact(fakes, ref, None, "void", {})
    if kind != "refundTransaction":
        return _declined("3", "3", f"{kind} is not supported by the sandbox.")
    if status != "settledSuccessfully":
        return _declined(
            "3", "54", "The referenced transaction does not meet the criteria for issuing a credit."
        )
    card = ((request.get("payment") or {}).get("creditCard") or {}).get("cardNumber", "")
    if str(card)[-4:] != CARD[-4:]:
        return _declined(
            "3", "54", "The referenced transaction does not meet the criteria for issuing a credit."
        )
    try:
        amount = Decimal(str(request.get("amount")))
    except InvalidOperation:
        return _declined("3", "5", "A valid amount is required.")
    order = request.get("order") or {}
    return _transact(fakes, ref, amount, "refund", {"invoiceNumber": order.get("invoiceNumber")})


def _transact(fakes: GatewayFakes, ref: str, amount: Decimal | None, action: str, meta: Doc) -> Doc:
    try:
        doc = fakes.refund(
            NAME, ref, amount, tag=meta.get("invoiceNumber"), action=action, meta=meta
        )
    except Declined as exc:
        if "exceeds" in exc.reason:
            return _declined(
                "3",
                "55",
                "The sum of credits against the referenced "
                "transaction would exceed original debit amount.",
            )
        return _declined("2", "2", exc.reason)
    doc.id = str(60_000_000_000 + len(fakes.refunds)) if action == "refund" else ref
    return {
        "transactionResponse": {
            "responseCode": "1",
            "transId": doc.id,
            "refTransID": ref,
            "accountNumber": CARD,
            "accountType": "Visa",
            "messages": [{"code": "1", "description": "This transaction has been approved."}],
        },
        "messages": {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]},
    }


def _refund_view(doc: GatewayRefundDoc) -> Doc:
    return {
        "transId": doc.id,
        "refTransId": doc.charge_id,
        "transactionType": "refundTransaction",
        "transactionStatus": "refundPendingSettlement",
        "settleAmount": float(doc.amount),
        "order": {"invoiceNumber": doc.meta.get("invoiceNumber")},
    }


def _ok(fields: Doc) -> Doc:
    return {
        **fields,
        "messages": {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]},
    }


def _error(code: str, text: str) -> Doc:
    return {"messages": {"resultCode": "Error", "message": [{"code": code, "text": text}]}}


def _declined(response_code: str, error_code: str, text: str) -> Doc:
    return {
        "transactionResponse": {
            "responseCode": response_code,
            "transId": "0",
            "errors": [{"errorCode": error_code, "errorText": text}],
        },
        "messages": {
            "resultCode": "Error",
            "message": [{"code": "E00027", "text": "The transaction was unsuccessful."}],
        },
    }


def _answer(body: Any) -> Response:
    return Response(BOM + json.dumps(body).encode(), media_type="application/json")
