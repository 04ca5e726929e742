"""Stripe: `POST /v1/refunds` on the GHL transaction's charge, through the official client.

The Wizehire refund id is the `Idempotency-Key` (Stripe performs a repeat once, for 24 hours)
and goes into the refund's metadata with the Wizehire order id, so `find_refund` also finds it
later than that. Amounts go in minor units by Stripe's currency rules (`_minor_units`).
Least privilege: a restricted key with Refunds "write" is enough (its read lets the doctor's
`GET /v1/refunds?limit=1` work).
"""

from __future__ import annotations

from typing import Any

import httpx
import stripe as stripe_lib

from wizesync.flows.refunds.gateways import (
    GatewayMisconfigured,
    GatewayOutcome,
    GatewayRefund,
    GatewaySetup,
    GatewaySpec,
    GatewayUnavailable,
    register_gateway,
)
from wizesync.flows.refunds.gateways._minor_units import to_minor_units

_REASONS = {
    "duplicate": "duplicate",
    "fraud": "fraudulent",
    "customer_request": "requested_by_customer",
}


class _SharedHttpx(stripe_lib.HTTPXClient):
    """Stripe's httpx adapter on the service's own client (its timeouts, its test routing)."""

    def __init__(self, http: httpx.AsyncClient, timeout: httpx.Timeout) -> None:
        super().__init__(timeout=timeout)
        self._client_async = http

    async def close_async(self) -> None:
        """The shared client belongs to the service."""

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        # The client posts its already-encoded form as `data=`, which httpx deprecates for
        # raw text; the same bytes as `content=`.
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if isinstance(data, str | bytes) and data:
            kwargs["content"] = data
        return args, kwargs


class StripeGateway:
    def __init__(self, setup: GatewaySetup) -> None:
        self._client = stripe_lib.StripeClient(
            setup.credentials["api_key_env"],
            http_client=_SharedHttpx(setup.http, setup.timeout),
            base_addresses={"api": setup.settings.stripe_api_base},
            # One request per attempt: the worker retries, looking first.
            max_network_retries=0,
        )

    async def refund(self, request: GatewayRefund) -> GatewayOutcome:
        # Plain dicts for the client's TypedDict params (its own keys, checked by Stripe).
        params: Any = {
            "amount": to_minor_units(request.amount, request.currency),
            "metadata": {
                "wizehire_order_id": request.wizehire_order_id,
                "wizehire_refund_id": request.key,
            },
            **_target(request.charge_id),
        }
        if request.reason_code in _REASONS:
            params["reason"] = _REASONS[request.reason_code]
        try:
            refund = await self._client.v1.refunds.create_async(
                params, options={"idempotency_key": request.key}
            )
        except (stripe_lib.CardError, stripe_lib.InvalidRequestError) as exc:
            return GatewayOutcome("declined", reason=f"Stripe declined the refund: {_words(exc)}")
        except Exception as exc:
            raise _classified(exc) from None
        return _outcome(refund)

    async def find_refund(self, request: GatewayRefund) -> GatewayOutcome | None:
        params: Any = {"limit": 100, **_target(request.charge_id)}
        try:
            page = await self._client.v1.refunds.list_async(params)
            async for refund in page.auto_paging_iter():
                if _metadata(refund).get("wizehire_refund_id") == request.key:
                    return _outcome(refund)
        except Exception as exc:
            raise _classified(exc) from None
        return None

    async def check_credentials(self) -> str | None:
        try:
            await self._client.v1.refunds.list_async({"limit": 1})
        except stripe_lib.AuthenticationError:
            return "Stripe refused the API key (401)"
        except stripe_lib.PermissionError:
            return "the Stripe key may not read refunds (a restricted key needs Refunds: write)"
        except stripe_lib.StripeError as exc:
            return f"Stripe answered {exc.http_status or 'no HTTP status'}: {_words(exc)}"
        return None


def _target(charge_id: str) -> dict[str, str]:
    """GHL's `chargeId` is a charge (`ch_`, `py_`) or a PaymentIntent (`pi_`)."""
    if charge_id.startswith("pi_"):
        return {"payment_intent": charge_id}
    if charge_id.startswith(("ch_", "py_")):
        return {"charge": charge_id}
    raise GatewayMisconfigured(
        f"GHL's charge id {charge_id!r} is neither a Stripe charge (ch_/py_) nor a "
        "PaymentIntent (pi_), so Stripe cannot be asked to refund it"
    )


def _metadata(refund: Any) -> dict[str, Any]:
    metadata = getattr(refund, "metadata", None)
    return metadata.to_dict() if metadata is not None else {}


def _outcome(refund: Any) -> GatewayOutcome:
    status = refund.status
    if status == "succeeded":
        return GatewayOutcome("succeeded", refund.id)
    if status in ("failed", "canceled"):
        reason = getattr(refund, "failure_reason", None) or status
        return GatewayOutcome("declined", refund.id, reason=f"Stripe refund {status}: {reason}")
    return GatewayOutcome("pending", refund.id)  # pending, requires_action


def _words(exc: stripe_lib.StripeError) -> str:
    return str(exc.user_message or getattr(exc, "code", None) or "no reason given")


def _classified(exc: Exception) -> Exception:
    if isinstance(exc, (stripe_lib.AuthenticationError, stripe_lib.PermissionError)):
        return GatewayMisconfigured(f"Stripe refused the credentials: {_words(exc)}")
    if isinstance(exc, GatewayMisconfigured):
        return exc
    if isinstance(exc, stripe_lib.StripeError):
        cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ is not None else ""
        return GatewayUnavailable(
            f"Stripe did not answer usably (HTTP "
            f"{exc.http_status or 'none'}): {type(exc).__name__}{cause}"
        )
    # Anything else (an answer the client could not read): the outcome is unknown.
    return GatewayUnavailable(f"Stripe's answer could not be read: {type(exc).__name__}")


register_gateway(
    GatewaySpec(
        name="stripe",
        provider_types=("stripe",),
        credentials=("api_key_env",),
        build=StripeGateway,
    )
)
