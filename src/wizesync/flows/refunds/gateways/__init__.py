"""Payment gateways a refund can be sent to: one module per gateway, found by name.

A gateway module in this package builds its client from a `GatewaySetup` and registers itself:

    register_gateway(GatewaySpec(name="stripe", provider_types=("stripe",),
                                 credentials=("api_key_env",), build=StripeGateway))

`discover()` imports every module of the package once, so adding a gateway (PayPal, Square) is
that module, its sandbox fake and its tests; no other file names it. The executors (`auto` and
one per gateway name) are made from this registry in `flows.refunds.gateway_executor`.

What a gateway promises (the executor relies on it):
- `refund` moves the money once per `GatewayRefund.key` (the Wizehire refund id): it sends the
  key as the gateway's idempotency key where it has one, and tags the refund with it so that
  `find_refund`, which the executor calls before any repeat, can find it.
- An answer is `succeeded`, `pending` (accepted, settles later) or `declined` (with the gateway's
  reason); anything it cannot tell (timeout, 5xx, network) raises `GatewayUnavailable`, and the
  refund may or may not have happened: the next attempt looks before it refunds again.
- Credentials come from environment variables the mapping names; no method logs or returns them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol

import httpx

if TYPE_CHECKING:
    from wizesync.config import Settings

GatewayStatus = Literal["succeeded", "pending", "declined"]


class GatewayUnavailable(Exception):
    """The gateway did not give an answer to rely on (timeout, 5xx, network): try again later,
    looking first. The message is in words and never holds a credential."""


class GatewayMisconfigured(Exception):
    """Credentials rejected or the request is one this gateway can never take: a human fixes
    it (the refund goes to `manual_action_required` with this reason)."""


@dataclass(frozen=True)
class GatewayRefund:
    """One refund to make at a gateway, in major units (each gateway converts as it must)."""

    key: str  # the Wizehire refund id: the idempotency key, or the tag a look-up finds
    wizehire_order_id: str
    amount: Decimal
    currency: str
    charge_id: str  # GHL's `chargeId`: the gateway's id of the original payment
    captured: Decimal  # the original payment's amount
    refunded_before: Decimal  # what GHL shows refunded on it already
    reason_code: str
    # When an earlier attempt first called the gateway (None: this is the first): how far back
    # a look-up must search.
    first_attempt_at: datetime | None = None


@dataclass(frozen=True)
class GatewayOutcome:
    status: GatewayStatus
    gateway_refund_id: str | None = None
    reason: str | None = None  # the gateway's words for a decline
    action: Literal["refund", "void"] = "refund"  # a void cancels an unsettled payment instead


@dataclass(frozen=True)
class GatewaySetup:
    """What a gateway gets to build its client: secrets by their mapping field name."""

    credentials: Mapping[str, str]  # e.g. {"api_key_env": "sk_..."} (values, never logged)
    settings: Settings
    http: httpx.AsyncClient
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(30.0, connect=10.0))


class Gateway(Protocol):
    async def refund(self, request: GatewayRefund) -> GatewayOutcome: ...

    async def find_refund(self, request: GatewayRefund) -> GatewayOutcome | None:
        """The refund an earlier attempt made for `request.key`, or None when there is none."""
        ...

    async def check_credentials(self) -> str | None:
        """A harmless authenticated call: None when the credentials work, else why not."""
        ...


@dataclass(frozen=True)
class GatewaySpec:
    name: str  # the mapping's name and Wizehire's `gateway` value
    provider_types: tuple[str, ...]  # GHL `paymentProviderType` values whose money it holds
    credentials: tuple[str, ...]  # the mapping's `*_env` fields it needs
    build: Callable[[GatewaySetup], Gateway]


_REGISTRY: dict[str, GatewaySpec] = {}
_discovered = False


def register_gateway(spec: GatewaySpec) -> GatewaySpec:
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.build is not spec.build:
        raise ValueError(f"a refund gateway named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def discover() -> dict[str, GatewaySpec]:
    """Every gateway of this package (its modules imported once), by name."""
    global _discovered
    if not _discovered:
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        _discovered = True
    return dict(_REGISTRY)


def gateway_for_provider(provider_type: str | None) -> GatewaySpec | None:
    """The gateway holding the money of a GHL transaction with this `paymentProviderType`."""
    if not provider_type:
        return None
    wanted = provider_type.strip().lower().replace("_", "-")
    for spec in discover().values():
        if wanted in {p.lower().replace("_", "-") for p in spec.provider_types}:
            return spec
    return None
