"""Authorize.net (a GHL white-label provider): its JSON API refunds settled payments and voids
unsettled ones.

- `getTransactionDetailsRequest` on GHL's `chargeId` gives the payment's `transactionStatus` and
  the card's masked number (`XXXX1111`), which `refundTransaction` needs with `refTransId`.
- Settled (`settledSuccessfully`): `createTransactionRequest` `refundTransaction`.
- Not settled yet (`capturedPendingSettlement`, ...): a refund is impossible; the full amount is
  voided instead (`voidTransaction`, the outcome says `void`); a partial amount is refused in
  words (ask again once it settled).
- No idempotency key: the refund carries `order.invoiceNumber` = a tag of the Wizehire refund
  id, and `find_refund` looks for it before any repeat: a voided original, the unsettled
  transactions, then the batches settled since the day before the first attempt.
Its JSON answers start with a UTF-8 byte order mark; `resultCode` `Error` with `E00007` means
the credentials are wrong. Least privilege: a dedicated API login ID and transaction key.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from wizesync.flows.refunds.gateways import (
    GatewayMisconfigured,
    GatewayOutcome,
    GatewayRefund,
    GatewaySetup,
    GatewaySpec,
    GatewayUnavailable,
    register_gateway,
)
from wizesync.flows.refunds.gateways._http import post
from wizesync.flows.refunds.gateways._minor_units import major_text

NAME = "Authorize.net"
UNSETTLED = frozenset(
    {
        "authorizedPendingCapture",
        "capturedPendingSettlement",
        "FDSPendingReview",
        "FDSAuthorizedPendingReview",
    }
)
SETTLED = frozenset({"settledSuccessfully"})
_AUTH_ERRORS = frozenset({"E00007", "E00008", "E00124"})


def tag(key: str) -> str:
    """`invoiceNumber`/`refId` hold 20 characters: a digest of the Wizehire refund id."""
    return "wz" + hashlib.sha256(key.encode()).hexdigest()[:18]


class AuthorizeNetGateway:
    def __init__(self, setup: GatewaySetup) -> None:
        self._auth = {
            "name": setup.credentials["login_id_env"],
            "transactionKey": setup.credentials["transaction_key_env"],
        }
        self._url = setup.settings.authnet_api_url
        self._http = setup.http
        self._timeout = setup.timeout

    async def refund(self, request: GatewayRefund) -> GatewayOutcome:
        original = await self._details(request.charge_id)
        status = str(original.get("transactionStatus") or "")
        amount = major_text(request.amount, request.currency)
        if status in UNSETTLED:
            if request.amount != request.captured or request.refunded_before:
                return GatewayOutcome(
                    "declined",
                    reason=(
                        f"Authorize.net has not settled transaction {request.charge_id} yet "
                        f"({status}): before settlement only the whole payment can be voided, not "
                        f"{amount} of it; request the refund again once it has settled (usually "
                        "within a day)"
                    ),
                )
            body: dict[str, Any] = {
                "transactionType": "voidTransaction",
                "refTransId": request.charge_id,
            }
            return await self._transaction(request, body, action="void")
        if status not in SETTLED:
            return GatewayOutcome(
                "declined",
                reason=(
                    f"Authorize.net transaction {request.charge_id} is "
                    f"{status or 'in no known state'}, which cannot be refunded"
                ),
            )
        card = (original.get("payment") or {}).get("creditCard") or {}
        number = str(card.get("cardNumber") or "")
        if not number:
            raise GatewayMisconfigured(
                f"Authorize.net shows no card for transaction {request.charge_id} (a bank "
                "account payment?): refund it in the Authorize.net account"
            )
        body = {  # the API's schema order: type, amount, payment, refTransId, order
            "transactionType": "refundTransaction",
            "amount": amount,
            "payment": {"creditCard": {"cardNumber": number[-4:], "expirationDate": "XXXX"}},
            "refTransId": request.charge_id,
            "order": {
                "invoiceNumber": tag(request.key),
                "description": f"Wizehire refund {request.key}"[:255],
            },
        }
        return await self._transaction(request, body, action="refund")

    async def find_refund(self, request: GatewayRefund) -> GatewayOutcome | None:
        original = await self._details(request.charge_id)
        if original.get("transactionStatus") == "voided" and request.amount == request.captured:
            return GatewayOutcome("succeeded", request.charge_id, action="void")
        answer = await self._call("getUnsettledTransactionListRequest", {})
        found = _tagged(answer, request.key)
        if found is not None or request.first_attempt_at is None:
            return found
        since = request.first_attempt_at - timedelta(days=1)
        batches = await self._call(
            "getSettledBatchListRequest",
            {
                "firstSettlementDate": _moment(since),
                "lastSettlementDate": _moment(max(datetime.now(UTC), since + timedelta(days=1))),
            },
        )
        for batch in batches.get("batchList") or []:
            listed = await self._call(
                "getTransactionListRequest", {"batchId": str(batch.get("batchId"))}
            )
            found = _tagged(listed, request.key)
            if found is not None:
                return found
        return None

    async def check_credentials(self) -> str | None:
        try:
            await self._call("authenticateTestRequest", {})
        except (GatewayMisconfigured, GatewayUnavailable) as exc:
            return str(exc)
        return None

    async def _details(self, trans_id: str) -> dict[str, Any]:
        answer = await self._call("getTransactionDetailsRequest", {"transId": trans_id})
        return dict(answer.get("transaction") or {})

    async def _transaction(
        self, request: GatewayRefund, body: dict[str, Any], *, action: str
    ) -> GatewayOutcome:
        answer = await self._call(
            "createTransactionRequest",
            {"refId": tag(request.key), "transactionRequest": body},
            accept_errors=True,
        )
        result = answer.get("transactionResponse") or {}
        code = str(result.get("responseCode") or "")
        trans_id = str(result.get("transId") or "") or None
        if code == "1":
            return GatewayOutcome("succeeded", trans_id, action=action)  # type: ignore[arg-type]
        if code == "4":  # held for review: it may still go through
            return GatewayOutcome("pending", trans_id, action=action)  # type: ignore[arg-type]
        errors = result.get("errors") or []
        words = (
            "; ".join(str(e.get("errorText")) for e in errors if e.get("errorText"))
            or _messages(answer)
            or "no reason given"
        )
        verb = "void" if action == "void" else "refund"
        return GatewayOutcome("declined", reason=f"Authorize.net declined the {verb}: {words}")

    async def _call(
        self, request_type: str, fields: dict[str, Any], *, accept_errors: bool = False
    ) -> dict[str, Any]:
        # Key order matters: the API validates the JSON against its XML schema's sequence.
        payload = {request_type: {"merchantAuthentication": self._auth, **fields}}
        response = await post(
            self._http,
            self._url,
            name=NAME,
            limits=self._timeout,
            content=json.dumps(payload).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            answer = json.loads(response.content.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise GatewayUnavailable(
                f"{NAME} answered HTTP {response.status_code} with something that is not JSON"
            ) from None
        messages = answer.get("messages") or {}
        if messages.get("resultCode") == "Error":
            codes = {str(m.get("code")) for m in messages.get("message") or []}
            if codes & _AUTH_ERRORS:
                raise GatewayMisconfigured(f"{NAME} refused the credentials: {_messages(answer)}")
            if not (accept_errors and answer.get("transactionResponse")):
                raise GatewayMisconfigured(f"{NAME} refused {request_type}: {_messages(answer)}")
        return dict(answer)


def _tagged(answer: dict[str, Any], key: str) -> GatewayOutcome | None:
    """The refund carrying `key`'s tag among a transaction list, if it went through."""
    for txn in answer.get("transactions") or []:
        if txn.get("invoiceNumber") == tag(key) and txn.get("transactionStatus") not in (
            "declined",
            "generalError",
            "voided",
        ):
            return GatewayOutcome("succeeded", str(txn.get("transId")))
    return None


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _messages(answer: dict[str, Any]) -> str:
    items = (answer.get("messages") or {}).get("message") or []
    return "; ".join(f"{m.get('code')} {m.get('text')}" for m in items)


register_gateway(
    GatewaySpec(
        name="authorize_net",
        provider_types=("authorize-net", "authorize_net", "authorizenet"),
        credentials=("login_id_env", "transaction_key_env"),
        build=AuthorizeNetGateway,
    )
)
