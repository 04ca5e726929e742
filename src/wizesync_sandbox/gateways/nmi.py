"""Fake NMI at `/nmi/api`: the Direct Post API (`transact.php`, `type=refund`) and the Query API
(`query.php`, XML), keyed by `security_key`.

Direct Post answers URL-encoded: `response` 1 approved / 2 declined / 3 error, `responsetext`,
`transactionid` (the refund's own), `orderid`, `response_code` (100 approved, 200 declined,
300 rejected by the gateway).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from wizesync_sandbox.gateways import Declined, GatewayFakes, GatewayRefundDoc

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox

NAME = "nmi"


def router(sb: Sandbox, fakes: GatewayFakes) -> APIRouter:
    api = APIRouter(prefix="/nmi/api", tags=["fake NMI"])

    @api.post("/transact.php")
    async def transact(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        order_id = form.get("orderid", "")

        def answer(
            response: str, text: str, code: str, transaction_id: str = ""
        ) -> PlainTextResponse:
            return PlainTextResponse(
                urlencode(
                    {
                        "response": response,
                        "responsetext": text,
                        "authcode": "",
                        "transactionid": transaction_id,
                        "avsresponse": "",
                        "cvvresponse": "",
                        "orderid": order_id,
                        "type": form.get("type", ""),
                        "response_code": code,
                    }
                )
            )

        if not fakes.accepts(form.get("security_key")):
            return answer("3", "Authentication Failed", "300")
        if form.get("type") != "refund":
            return answer(
                "3", f"Transaction type {form.get('type')!r} is not supported by the sandbox", "300"
            )
        try:
            amount = Decimal(form["amount"]) if form.get("amount") else None
        except InvalidOperation:
            return answer("3", "Invalid amount REFID:3", "300")
        charge = form.get("transactionid", "")
        if fakes.transaction(charge) is None:
            return answer("3", f"Transaction not found REFID:{charge}", "300")
        try:
            doc = fakes.refund(NAME, charge, amount, tag=order_id or None)
        except Declined as exc:
            if "exceeds" in exc.reason:
                return answer(
                    "3", "Refund amount may not exceed the transaction balance REFID:1", "300"
                )
            return answer("2", exc.reason, "200")
        lost = await fakes.answer_lost(NAME)
        if lost is not None:
            return lost
        return answer("1", "SUCCESS", "100", doc.id)

    @api.post("/query.php")
    async def query(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        if not fakes.accepts(form.get("security_key")):
            return _xml(
                "<nm_response><error_response>Invalid Security Key</error_response></nm_response>"
            )
        docs = fakes.of(NAME)
        if form.get("order_id"):
            docs = [d for d in docs if d.tag == form["order_id"]]
        if form.get("transaction_id"):
            docs = [d for d in docs if form["transaction_id"] in (d.id, d.charge_id)]
        return _xml("<nm_response>" + "".join(_transaction(d) for d in docs) + "</nm_response>")

    return api


def _transaction(doc: GatewayRefundDoc) -> str:
    return (
        f"<transaction><transaction_id>{escape(doc.id)}</transaction_id>"
        f"<original_transaction_id>{escape(doc.charge_id)}</original_transaction_id>"
        f"<transaction_type>cc</transaction_type><condition>pendingsettlement</condition>"
        f"<order_id>{escape(doc.tag or '')}</order_id>"
        f"<action><amount>{doc.amount:.2f}</amount><action_type>refund</action_type>"
        f"<success>1</success><response_text>SUCCESS</response_text>"
        f"<response_code>100</response_code></action></transaction>"
    )


def _xml(text: str) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + text, media_type="text/xml")
