"""The sandbox's parts, built once and shared by both fakes and the control plane."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from wizesync_sandbox.clock import Clock
from wizesync_sandbox.faults import FaultInjector
from wizesync_sandbox.ghl_http import Gate
from wizesync_sandbox.ghl_invoices import Invoices
from wizesync_sandbox.ghl_ledger import Ledger
from wizesync_sandbox.ghl_orders import Orders
from wizesync_sandbox.ghl_state import GhlStore
from wizesync_sandbox.ghl_subscriptions import Subscriptions
from wizesync_sandbox.ghl_tokens import TokenAuthority
from wizesync_sandbox.ratelimit import RateLimiter
from wizesync_sandbox.settings import SandboxConfig
from wizesync_sandbox.webhooks_out import Outbox
from wizesync_sandbox.wizehire_state import WizehireState

if TYPE_CHECKING:
    from wizesync_sandbox.gateways import GatewayFakes


@dataclass
class Sandbox:
    config: SandboxConfig
    clock: Clock
    store: GhlStore
    tokens: TokenAuthority
    limiter: RateLimiter
    faults: FaultInjector
    outbox: Outbox
    ledger: Ledger
    invoices: Invoices
    subscriptions: Subscriptions
    orders: Orders
    gate: Gate
    wizehire: WizehireState
    # The fake payment gateways (made in `build`: they refund the fake GHL's charges).
    gateways: GatewayFakes = field(init=False)

    @classmethod
    def build(
        cls,
        config: SandboxConfig | None = None,
        *,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> Sandbox:
        from wizesync_sandbox.gateways import GatewayFakes

        config = config or SandboxConfig()
        clock = clock or Clock()
        store = GhlStore(clock)
        tokens = TokenAuthority(config, clock, store)
        limiter = RateLimiter(config, clock)
        outbox = Outbox(config, http)
        ledger = Ledger(store, outbox.ghl_event)
        subscriptions = Subscriptions(ledger)
        sandbox = cls(
            config=config,
            clock=clock,
            store=store,
            tokens=tokens,
            limiter=limiter,
            faults=FaultInjector(config),
            outbox=outbox,
            ledger=ledger,
            invoices=Invoices(ledger),
            subscriptions=subscriptions,
            orders=Orders(ledger, subscriptions),
            gate=Gate(config, store, tokens, limiter),
            wizehire=WizehireState(clock),
        )
        sandbox.gateways = GatewayFakes(sandbox)
        return sandbox

    def reset(self) -> None:
        """Forget everything (data, tokens, limits, faults, outbox, recorded calls), keep config."""
        for part in (
            self.store,
            self.tokens,
            self.limiter,
            self.faults,
            self.outbox,
            self.wizehire,
            self.gateways,
        ):
            part.reset()

    def dump(self, location_id: str | None = None) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(),
            "clock": self.clock.describe(),
            "ghl": self.store.dump(location_id),
            "oauth": self.tokens.dump(),
            "rate_limits": self.limiter.snapshot(),
            "faults": [r.model_dump() for r in self.faults.rules],
            "webhooks": [d.public() for d in self.outbox.deliveries.values()],
            "wizehire": self.wizehire.dump(),
            "gateway_refunds": [r.public() for r in self.gateways.refunds],
        }
