"""`auto` and one executor per gateway plug-in: refund where the money of the GHL payment is.

`auto` reads the refund's GHL transaction (`paymentProviderType`, `chargeId`) and picks the
gateway that holds it; `stripe`, `nmi`, `authorize_net` (any registered gateway's name) force
one. No gateway for the payment (offline, unknown provider), no charge id, or no credentials for
the location -> `manual_action_required` with the reason in words (and the manual Slack notice).

Never two refunds for one Wizehire refund:
1. the gateway is recorded with `gateway_attempted_at` and committed BEFORE its first call;
2. an attempt that finds that mark asks the gateway first (`find_refund`: Stripe by metadata,
   NMI by `order_id`, Authorize.net by invoice number) and adopts what it finds;
3. Stripe also gets the Wizehire refund id as its `Idempotency-Key`;
4. a refund the gateway has answered (`gateway_refund_id` stored) is never sent again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from typing import Any, cast
from weakref import WeakKeyDictionary

import httpx

from wizesync.db import refund_repo
from wizesync.db.base import utcnow
from wizesync.flows.outcomes import calling
from wizesync.flows.payments.payment_state import PaymentState, money
from wizesync.flows.refunds.executors import (
    ExecutorResult,
    ExecutorStatus,
    ManualExecutor,
    RefundCase,
    register_executor,
)
from wizesync.flows.refunds.gateways import (
    Gateway,
    GatewayMisconfigured,
    GatewayOutcome,
    GatewayRefund,
    GatewaySetup,
    GatewaySpec,
    GatewayUnavailable,
    discover,
    gateway_for_provider,
)
from wizesync.flows.refunds.gateways._minor_units import AmountNotRepresentable
from wizesync.ghl import models as m
from wizesync.inbox.context import RetryLater, Services
from wizesync.mapping import Refunds

log = logging.getLogger(__name__)

AUTO = "auto"
OFFLINE_PROVIDERS = frozenset({"manual", "offline", "cash", "check", "cheque", "bank_transfer"})


@dataclass(frozen=True)
class Credentials:
    values: dict[str, str]  # mapping field -> secret (never logged)

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((k, hash(v)) for k, v in self.values.items()))


def resolve_credentials(
    refunds: Refunds,
    location_id: str,
    spec: GatewaySpec,
    environ: AnyMapping[str, str] | None = None,
) -> Credentials | str:
    """The gateway's secrets for the location, read from the variables the mapping names;
    the reason in words when there are none (no secret appears in it)."""
    env = os.environ if environ is None else environ
    names = refunds.credential_names(location_id, spec.name)
    if names is None:
        return (
            f"the mapping names no {spec.name} credentials for GHL location {location_id} "
            f"(refunds.gateways.{location_id}.{spec.name} or "
            f"refunds.gateways.default.{spec.name})"
        )
    values: dict[str, str] = {}
    for field in spec.credentials:
        variable = names.get(field)
        if not variable:
            return f"the mapping's {spec.name} credentials lack {field}"
        value = env.get(variable, "")
        if not value.strip():
            return (
                f"environment variable {variable} ({spec.name} {field} for GHL location "
                f"{location_id}) is not set"
            )
        values[field] = value.strip()
    return Credentials(values)


class GatewayHub:
    """Built gateway clients, one per gateway and set of credentials, on the service's HTTP
    client (one hub per client: `hub_for`)."""

    def __init__(self, settings: Any, http: httpx.AsyncClient | None) -> None:
        self.settings = settings
        self.http = http
        self._built: dict[tuple[str, tuple[tuple[str, int], ...]], Gateway] = {}

    def get(self, spec: GatewaySpec, credentials: Credentials) -> Gateway:
        key = (spec.name, credentials.fingerprint())
        gateway = self._built.get(key)
        if gateway is None:
            if self.http is None:
                raise GatewayMisconfigured("the service has no HTTP client for payment gateways")
            timeout = httpx.Timeout(
                self.settings.refund_gateway_timeout_seconds,
                connect=min(10.0, self.settings.refund_gateway_timeout_seconds),
            )
            gateway = spec.build(
                GatewaySetup(
                    credentials=credentials.values,
                    settings=self.settings,
                    http=self.http,
                    timeout=timeout,
                )
            )
            self._built[key] = gateway
        return gateway


# Built gateway clients live as long as the HTTP client they are built on (the process's one;
# each test kit has its own).
_HUBS: WeakKeyDictionary[httpx.AsyncClient, GatewayHub] = WeakKeyDictionary()


def hub_for(services: Services) -> GatewayHub:
    """The gateway clients on the services' HTTP client, made on first use with its settings."""
    http = services.http
    if http is None:
        return GatewayHub(services.settings, None)  # its `get` says there is no client
    hub = _HUBS.get(http)
    if hub is None:
        hub = _HUBS[http] = GatewayHub(services.settings, http)
    return hub


@dataclass(frozen=True)
class Choice:
    spec: GatewaySpec
    charge_id: str
    captured: Any
    refunded_before: Any


class GatewayExecutor:
    """`forced` None: `auto`."""

    def __init__(self, forced: str | None = None) -> None:
        self.forced = forced
        self.name = forced or AUTO

    async def execute(
        self, ctx: Any, refund: RefundCase, order_state: PaymentState
    ) -> ExecutorResult:
        if refund.gateway_refund_id:
            # Answered before (e.g. pending at the gateway): never sent again.
            return ExecutorResult(
                status=cast(ExecutorStatus, refund.status),
                gateway=refund.gateway,
                gateway_refund_id=refund.gateway_refund_id,
            )
        choice = await self._choose(ctx, refund)
        if isinstance(choice, str):
            log.info(
                "refund needs a human",
                extra={"refund_id": refund.wizehire_refund_id, "reason": choice},
            )
            return await ManualExecutor(choice).execute(ctx, refund, order_state)
        credentials = resolve_credentials(
            ctx.services.mapping.refunds, refund.ghl_location_id, choice.spec
        )
        if isinstance(credentials, str):
            return await ManualExecutor(credentials).execute(ctx, refund, order_state)
        request = GatewayRefund(
            key=refund.wizehire_refund_id,
            wizehire_order_id=refund.wizehire_order_id,
            amount=money(refund.amount),
            currency=refund.currency,
            charge_id=choice.charge_id,
            captured=money(choice.captured),
            refunded_before=money(choice.refunded_before),
            reason_code=refund.reason_code,
            first_attempt_at=refund.gateway_attempted_at,
        )
        name = choice.spec.name
        try:
            gateway = hub_for(ctx.services).get(choice.spec, credentials)
            if refund.gateway_attempted_at is not None:
                found = await gateway.find_refund(request)
                if found is not None:
                    log.info(
                        "gateway refund found from an earlier attempt",
                        extra={
                            "refund_id": request.key,
                            "gateway": name,
                            "gateway_refund_id": found.gateway_refund_id,
                        },
                    )
                    return _result(name, found)
            await _record_intent(ctx, refund.refund_id, name)
            outcome = await gateway.refund(request)
        except GatewayUnavailable as exc:
            raise RetryLater(
                f"refund {request.key} at {name}: {exc}; the next attempt looks "
                f"for it at {name} before sending it again"
            ) from None
        except GatewayMisconfigured as exc:
            return await ManualExecutor(str(exc)).execute(ctx, refund, order_state)
        except AmountNotRepresentable as exc:
            return ExecutorResult(status="failed", gateway=name, failure_reason=str(exc))
        log.info(
            "gateway answered the refund",
            extra={
                "refund_id": request.key,
                "gateway": name,
                "status": outcome.status,
                "action": outcome.action,
                "gateway_refund_id": outcome.gateway_refund_id,
            },
        )
        return _result(name, outcome)

    async def _choose(self, ctx: Any, refund: RefundCase) -> Choice | str:
        with calling(f"GHL transaction {refund.ghl_transaction_id} read"):
            txn: m.Transaction = await ctx.services.ghl.get_transaction(
                refund.ghl_location_id, refund.ghl_transaction_id
            )
        provider = txn.payment_provider_type or (txn.payment_provider or {}).get("type")
        specs = discover()
        # A gateway already tried for this refund stays the one (a look-up before any repeat).
        name = refund.gateway or self.forced
        if name is not None:
            spec = specs.get(name)
            if spec is None:
                return f"no refund gateway named {name!r} is installed"
        else:
            spec = gateway_for_provider(provider)
            if spec is None:
                return _no_gateway_reason(provider, refund.ghl_transaction_id, specs)
        if not txn.charge_id:
            return (
                f"GHL shows no charge id for transaction {refund.ghl_transaction_id}, so "
                f"{spec.name} cannot be asked to refund it"
            )
        return Choice(spec, txn.charge_id, txn.amount or 0, txn.amount_refunded or 0)


def _no_gateway_reason(provider: str | None, txn_id: str, specs: dict[str, GatewaySpec]) -> str:
    if not provider:
        return (
            f"GHL does not say which payment provider took transaction {txn_id}: refund it "
            "where the money was taken, then record it in GHL"
        )
    if provider.lower() in OFFLINE_PROVIDERS:
        return (
            f"paid offline in GHL (payment provider {provider!r}): refund it where the "
            "money was taken, then record it in GHL"
        )
    return (
        f"payment provider {provider!r} has no refund gateway here (known: "
        f"{', '.join(sorted(specs))}): refund it in {provider}; GHL then shows it"
    )


def _result(name: str, outcome: GatewayOutcome) -> ExecutorResult:
    if outcome.status == "declined":
        return ExecutorResult(
            status="failed",
            gateway=name,
            failure_reason=outcome.reason,
            gateway_refund_id=outcome.gateway_refund_id,
            gateway_action=outcome.action,
        )
    return ExecutorResult(
        status=outcome.status,
        gateway=name,
        gateway_refund_id=outcome.gateway_refund_id,
        gateway_action=outcome.action,
    )


async def _record_intent(ctx: Any, refund_id: int, gateway: str) -> None:
    """Committed before the call: whatever happens next, a retry knows to look first (and
    since when: the first attempt's time is kept)."""
    async with ctx.unit_of_work() as session:
        current = await refund_repo.lock(session, refund_id)
        values: dict[str, Any] = {"gateway": gateway}
        if current is not None and current.gateway_attempted_at is None:
            values["gateway_attempted_at"] = utcnow()
        await refund_repo.set_fields(session, refund_id, **values)


def register_gateway_executors() -> None:
    """`auto`, and an executor named after each gateway plug-in found (again: no-op)."""
    register_executor(AUTO, GatewayExecutor)
    for spec_name in discover():
        register_executor(spec_name, _forced(spec_name))


_FORCED: dict[str, Any] = {}


def _forced(name: str) -> Any:
    # One factory object per name, so registering twice (re-import) is not a conflict.
    if name not in _FORCED:

        def factory() -> GatewayExecutor:
            return GatewayExecutor(name)

        _FORCED[name] = factory
    return _FORCED[name]


register_gateway_executors()
