"""NMI (a GHL white-label provider): the Direct Post API refunds, the Query API looks.

`POST transact.php` with `type=refund`, `transactionid` (GHL's `chargeId`), `amount` and
`orderid` = the Wizehire refund id; the answer is URL-encoded: `response` 1 approved,
2 declined, 3 error, with `responsetext`, `transactionid` (the refund's own) and
`response_code`. NMI has no idempotency key, so before any repeat `find_refund` asks the Query
API (`query.php`, next to transact.php) for refunds with that `order_id`: an approved one of the
same amount is adopted instead of refunding twice.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs
from xml.etree.ElementTree import Element, ParseError

from defusedxml.ElementTree import fromstring

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

NAME = "NMI"
# response_code values that say "the processor could not be reached": worth another try.
_TRANSIENT_CODES = frozenset({"420", "421"})
_CONFIG_CODES = frozenset({"410", "411"})


def query_url(transact_url: str) -> str:
    """NMI serves the Query API beside the Direct Post API (`.../api/query.php`)."""
    base, _, _ = transact_url.rpartition("/")
    return f"{base}/query.php"


class NmiGateway:
    def __init__(self, setup: GatewaySetup) -> None:
        self._key = setup.credentials["security_key_env"]
        self._url = setup.settings.nmi_api_url
        self._http = setup.http
        self._timeout = setup.timeout

    async def refund(self, request: GatewayRefund) -> GatewayOutcome:
        form = {
            "security_key": self._key,
            "type": "refund",
            "transactionid": request.charge_id,
            "amount": _amount(request.amount, request.currency),
            "orderid": request.key,
        }
        response = await post(self._http, self._url, name=NAME, limits=self._timeout, data=form)
        answer = {k: v[0] for k, v in parse_qs(response.text, keep_blank_values=True).items()}
        code = answer.get("response")
        text = answer.get("responsetext") or "no reason given"
        response_code = answer.get("response_code", "")
        if code == "1":
            return GatewayOutcome("succeeded", answer.get("transactionid") or None)
        if code == "2":
            return GatewayOutcome("declined", reason=f"NMI declined the refund: {text}")
        if code == "3":
            if response_code in _TRANSIENT_CODES:
                raise GatewayUnavailable(f"NMI could not reach the processor: {text}")
            if response_code in _CONFIG_CODES or "authentication" in text.lower():
                raise GatewayMisconfigured(f"NMI refused the merchant's credentials: {text}")
            return GatewayOutcome("declined", reason=f"NMI refused the refund: {text}")
        raise GatewayUnavailable(f"NMI answered HTTP {response.status_code} without a result")

    async def find_refund(self, request: GatewayRefund) -> GatewayOutcome | None:
        root = await self._query({"order_id": request.key, "action_type": "refund"})
        wanted = Decimal(_amount(request.amount, request.currency))
        for txn in root.iter("transaction"):
            if (txn.findtext("order_id") or "") != request.key:
                continue
            for action in txn.iter("action"):
                if (action.findtext("action_type") or "") != "refund":
                    continue
                if (action.findtext("success") or "") != "1":
                    continue
                if Decimal(action.findtext("amount") or "0") == wanted:
                    return GatewayOutcome("succeeded", txn.findtext("transaction_id") or None)
        return None

    async def check_credentials(self) -> str | None:
        try:
            await self._query({"transaction_id": "0"})
        except (GatewayMisconfigured, GatewayUnavailable) as exc:
            return str(exc)
        return None

    async def _query(self, params: dict[str, str]) -> Element:
        response = await post(
            self._http,
            query_url(self._url),
            name="NMI's Query API",
            limits=self._timeout,
            data={"security_key": self._key, **params},
        )
        try:
            root = fromstring(response.content)
        except ParseError:
            raise GatewayUnavailable("NMI's Query API answered something that is not XML") from None
        error = root.findtext("error_response")
        if error:
            raise GatewayMisconfigured(f"NMI's Query API refused the request: {error}")
        return root


def _amount(amount: Decimal, currency: str) -> str:
    return major_text(amount, currency)


register_gateway(
    GatewaySpec(
        name="nmi", provider_types=("nmi",), credentials=("security_key_env",), build=NmiGateway
    )
)
