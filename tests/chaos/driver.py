"""Chaos: replicas on PostgreSQL, killed and cut off while orders flow, then checked from outside.

The run (`make chaos`, or `tests/chaos/` with small numbers):
- one fresh PostgreSQL database, reached by every service process through a TCP proxy the run owns
  (cutting it is "PostgreSQL restarted" for the service; the shared server is never touched);
- `wizesync sandbox` (fake GHL + fake Wizehire) in OAuth mode with short-lived access tokens,
  several locations each installed through the service's real install route, ~20% of GHL API
  requests failing (500/502/503 before or after doing the work, hangs answered 504, latency), 10%
  of Wizehire writes failing after doing the work;
- 2 API processes (`wizesync serve`, WORKER=off) behind a round-robin TCP balancer and 2 worker
  processes (`wizesync worker`);
- the sandbox holds every webhook it makes (Wizehire events and GHL's own), and this driver is
  the sender: it releases them in shuffled batches, re-sends some (duplicates), and the sandbox's
  delivery retries a non-2xx or unanswered webhook with backoff, like the real senders;
- N orders over `--seconds`: paid Wizehire orders (contact, invoice, payment, fulfillment),
  pending ones paid later by `order.updated`, orders a customer paid in a GHL checkout first
  (matched, no invoice); some refunded (`refund.requested`, manual executor: a "human" refunds in
  GHL once Wizehire hears `manual_action_required`, and the poller settles it);
- meanwhile a random API or worker process is SIGKILLed every few seconds and restarted, and
  PostgreSQL is cut once for `--outage-seconds` (and the test database's backends terminated).

Afterwards the sandbox's own records are checked: every order synced, exactly one invoice (or
none for a checkout order), payment and fulfillment per order, every refund handled once, every
2xx-answered webhook in the inbox and `done`, no 5xx but 503 while PostgreSQL was cut, one token
refresh per expiry per location across processes, zero GHL 429s. The figures are printed.

`make chaos` (benchmarks/chaos.py) runs it with 2,000 orders; `tests/chaos/` with fewer.
"""

from __future__ import annotations

import asyncio
import random
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from tests.chaos.checks import (
    answered_2xx,
    check_orders,
    check_rate_limits,
    check_refunds,
    check_tokens,
    check_webhooks,
    check_wizehire_once,
    collect,
    describe,
    faults_injected,
    machine_load,
)
from tests.support.balancer import RoundRobinBalancer
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.processes import (
    Proc,
    Spawner,
    TcpProxy,
    free_port,
    service_env,
    terminate_backends,
    via_proxy,
    wait_answering,
)
from wizesync import samples
from wizesync.config import DEV_WIZEHIRE_SECRET
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.db.migrate import upgrade_head
from wizesync.db.models import InboxEvent
from wizesync_sandbox import defaults

CLIENT_ID, CLIENT_SECRET = "chaos-app", "chaos-app-secret"  # the sandbox's app, not a secret
ADMIN_TOKEN = "chaos-admin-token-0123456789abcdefghijklmnop"  # 32+ characters, as the service asks
# The service renews an access token this long before it expires (ghl/tokens.py REFRESH_MARGIN).
SERVICE_REFRESH_MARGIN = 300
AMOUNT = Decimal("149.00")
REFUND_AMOUNT = Decimal("49.00")


@dataclass
class Options:
    orders: int = 2000
    seconds: float = 300.0  # the chaos phase: orders are spread over it, kills happen in it
    seed: int = 12
    locations: int = 10
    kill_every: float = 4.0  # mean seconds between SIGKILLs
    outage_seconds: float = 8.0
    fault_rate: float = 0.2
    wizehire_fault_rate: float = 0.1
    duplicate_rate: float = 0.15
    refund_rate: float = 0.1
    checkout_rate: float = 0.15
    pending_rate: float = 0.15
    token_refresh_every: int = 45  # seconds between the renewals one location needs
    # The poller settles refunds (GHL sends no webhook for them); it re-reads every order of the
    # last 10 minutes per run, so a short interval costs GHL budget the orders need.
    poll_interval: int = 20
    # Per worker process (production's default). Each in-flight event may hold a connection: at
    # 32 one run used half of a shared PostgreSQL's 100 connections.
    worker_concurrency: int = 8
    drain_timeout: float = 4500.0
    keep: bool = False  # keep the work directory (logs) even when everything passed


@dataclass
class Order:
    id: str
    kind: str  # paid | pending | checkout
    location_id: str
    email: str
    refund_id: str | None = None
    submitted_at: float = 0.0
    synced_at: float | None = None
    refund_requested: bool = False
    ghl_refunded: bool = False


@dataclass
class Figures:
    lines: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        self.lines.append((name, str(value)))

    def text(self) -> str:
        width = max((len(n) for n, _ in self.lines), default=0)
        out = [f"{n:<{width}}  {v}" for n, v in self.lines]
        out.append(f"{'problems':<{width}}  {len(self.problems)}")
        out += [f"  - {p}" for p in self.problems]
        return "\n".join(out)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def mapping_yaml(default_location: str) -> str:
    lines = [
        "locations:",
        f"  default: {default_location}",
        "products:",
        "  JOB-BOOST-30:",
        f"    price_id: {defaults.BOOST_PRICE_ID}",
        f"    product_id: {defaults.BOOST_PRODUCT_ID}",
        "fulfillment:",
        "  notify_customer: false",
        "refunds:",
        "  executor: manual",
    ]
    return "\n".join(lines) + "\n"


def fault_rules(rate: float, wizehire_rate: float) -> list[dict[str, Any]]:
    """A request meets at most one rule: the first matching its method and path, which then
    fires with its rate. The token endpoint fails only BEFORE doing the work: a refresh answer
    lost after GHL rotated the single-use refresh token cannot be recovered by any client."""
    return [
        {"method": "POST", "path": "/ghl/oauth/*", "status": 503, "rate": rate, "latency_ms": 50},
        {
            "method": "POST",
            "path": "/ghl/contacts/*",
            "status": 500,
            "rate": rate,
            "phase": "after",
            "latency_ms": 100,
        },
        {
            "method": "POST",
            "path": "/ghl/invoices*",
            "status": 502,
            "rate": rate,
            "phase": "after",
            "latency_ms": 100,
        },
        {
            "method": "POST",
            "path": "/ghl/payments/*",
            "timeout": True,
            "hang_seconds": 2,
            "rate": rate,
            "phase": "after",
        },
        {
            "method": "GET",
            "path": "/ghl/payments/*",
            "status": 503,
            "rate": rate,
            "latency_ms": 150,
        },
        {"method": "GET", "path": "/ghl/*", "status": 500, "rate": rate, "latency_ms": 150},
        {
            "method": "PATCH",
            "path": "/wizehire/*",
            "status": 503,
            "rate": wizehire_rate,
            "phase": "after",
        },
    ]


class Chaos:
    def __init__(self, options: Options, workdir: Path, say: Any = print) -> None:
        self.o = options
        self.workdir = workdir
        self.say = say
        self.rng = random.Random(options.seed)  # reproducible on purpose
        self.figures = Figures()
        self.refund_amount = REFUND_AMOUNT
        self.spawner = Spawner(workdir)
        self.slots: dict[str, Proc] = {}
        self.generation: Counter[str] = Counter()
        self.restarting: set[str] = set()
        self.kills: Counter[str] = Counter()
        self.unexpected_exits: list[str] = []
        self.outages: list[tuple[float, float]] = []
        self.terminated_backends = 0
        self.orders: list[Order] = []
        self.duplicates = 0
        self.resent_after_give_up = 0
        self.inflight: set[str] = set()
        self.sends = 0
        self.stopping = False
        self.chaos_over = asyncio.Event()
        self.submitted = asyncio.Event()

    # --- set-up ----------------------------------------------------------------------------------
    async def setup(self) -> None:
        url, reason = await asyncio.to_thread(create_postgres_database)
        if url is None:
            raise RuntimeError(reason)
        self.db_url = url
        await asyncio.to_thread(upgrade_head, url)
        self.proxy = TcpProxy.to(url)
        self.proxy.start()
        service_db = via_proxy(url, self.proxy)
        self.api_ports = [free_port(), free_port()]
        self.balancer = RoundRobinBalancer([("127.0.0.1", p) for p in self.api_ports])
        self.balancer.start()
        self.sandbox_url = f"http://127.0.0.1:{free_port()}"
        self.control = httpx.AsyncClient(base_url=self.sandbox_url, timeout=60)
        sandbox = Proc(
            "sandbox",
            [
                "sandbox",
                "--port",
                self.sandbox_url.rsplit(":", 1)[1],
                "--service-url",
                self.balancer.url,
                "--webhooks",
                "hold",
            ],
            service_env(service_db, LOG_LEVEL="WARNING"),
            self.workdir,
        )
        self.spawner.procs.append(sandbox)
        self.sandbox = sandbox
        await wait_answering(sandbox, self.control)
        await self._configure_sandbox()
        (self.workdir / "mapping.yaml").write_text(mapping_yaml(self.locations[0]))
        base = {
            "GHL_API_URL": f"{self.sandbox_url}/ghl",
            "GHL_AUTHORIZE_URL": f"{self.sandbox_url}/ghl/oauth/chooselocation",
            "GHL_CLIENT_ID": CLIENT_ID,
            "GHL_CLIENT_SECRET": CLIENT_SECRET,
            "GHL_REDIRECT_URI": f"{self.balancer.url}/oauth/ghl/callback",
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "WIZEHIRE_API_URL": f"{self.sandbox_url}/wizehire",
            "WIZEHIRE_API_KEY": "sandbox-wizehire-api-key",
            "WIZEHIRE_WEBHOOK_SECRET": DEV_WIZEHIRE_SECRET,
            "MAPPING_FILE": str(self.workdir / "mapping.yaml"),
            "POLL_INTERVAL_SECONDS": str(self.o.poll_interval),
            "WORKER_HANDLER_MODULES": "",
            "WORKER_LEASE_SECONDS": "10",
            "WORKER_CONCURRENCY": str(self.o.worker_concurrency),
            "WORKER_POLL_SECONDS": "0.5",
            "WORKER_BACKOFF_BASE_SECONDS": "0.5",
            "WORKER_BACKOFF_MAX_SECONDS": "15",
            # The backoff above is compressed (production: 2 s doubling to 1 h), so production's
            # 12 attempts would span 2 minutes here instead of an hour: give the same span.
            "WORKER_MAX_ATTEMPTS": "25",
            "LOG_LEVEL": "INFO",
            # The install route is the installer's: an admin starts it, as in production.
            "ADMIN_TOKEN": ADMIN_TOKEN,
            # Sandbox INSTALL/UNINSTALL events name the app by its client id.
            "GHL_APP_ID": CLIENT_ID,
        }
        self.api_env = service_env(service_db, **base, WORKER="off")
        self.worker_env = service_env(service_db, **base)
        for n in range(2):
            self._spawn(f"api{n}")
            self._spawn(f"worker{n}")
        async with httpx.AsyncClient(base_url=self.balancer.url, timeout=30) as http:
            for n in range(2):
                api = self.slots[f"api{n}"]
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{self.api_ports[n]}", timeout=10
                ) as one:
                    await wait_answering(api, one)
            for n in range(2):
                await self.slots[f"worker{n}"].wait_for_output("worker started")
            for location_id in self.locations:
                await self._install(http, location_id)
        for rule in fault_rules(self.o.fault_rate, self.o.wizehire_fault_rate):
            (await self.control.post("/_sandbox/faults", json=rule)).raise_for_status()

    async def _configure_sandbox(self) -> None:
        config = {
            "access_token_ttl_seconds": SERVICE_REFRESH_MARGIN + self.o.token_refresh_every,
            "ghl_client_id": CLIENT_ID,
            "ghl_client_secret": CLIENT_SECRET,
            "webhook_max_attempts": 12,
            "webhook_retry_seconds": 0.25,
            "webhook_timeout_seconds": 10,
            "fault_seed": self.o.seed,
        }
        (await self.control.patch("/_sandbox/config", json=config)).raise_for_status()
        # A reset re-seeds the fault injector's generator with `fault_seed`.
        (await self.control.post("/_sandbox/reset", json={"seed": True})).raise_for_status()
        default = defaults.DEFAULT_LOCATION_ID
        (
            await self.control.patch(f"/_sandbox/ghl/locations/{default}", json={"pit": False})
        ).raise_for_status()
        self.locations = [default]
        self.checkout_price = {default: defaults.BOOST_PRICE_ID}
        for n in range(1, self.o.locations):
            answer = await self.control.post(
                "/_sandbox/ghl/locations",
                json={
                    "name": f"Chaos location {n}",
                    "company_id": defaults.DEFAULT_COMPANY_ID,
                    "pit": False,
                },
            )
            answer.raise_for_status()
            location_id = answer.json()["id"]
            product = await self.control.post(
                "/_sandbox/ghl/products",
                json={
                    "location_id": location_id,
                    "name": "Job ad boost, 30 days",
                    "prices": [{"name": "One-time", "amount": str(AMOUNT)}],
                },
            )
            product.raise_for_status()
            self.locations.append(location_id)
            self.checkout_price[location_id] = product.json()["prices"][0]["_id"]

    async def _install(self, http: httpx.AsyncClient, location_id: str) -> None:
        """The marketplace install, as a browser would click through it, for one location."""
        start = await http.get(
            "/oauth/ghl/install", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert start.status_code == 302, start.text
        chooser = httpx.URL(start.headers["location"])
        chooser = chooser.copy_add_param("location_id", location_id)
        back = await self.control.get(chooser.raw_path.decode())
        assert back.status_code == 302, back.text
        callback = httpx.URL(back.headers["location"])
        done = await http.get(callback.raw_path.decode())
        assert done.status_code == 200 and done.json()["status"] == "installed", done.text

    def _spawn(self, slot: str) -> Proc:
        self.generation[slot] += 1
        name = f"{slot}-{self.generation[slot]}"
        if slot.startswith("api"):
            port = self.api_ports[int(slot[3:])]
            proc = Proc(
                name,
                ["serve", "--host", "127.0.0.1", "--port", str(port)],
                self.api_env,
                self.workdir,
            )
        else:
            proc = Proc(name, ["worker", "--grace", "5"], self.worker_env, self.workdir)
        self.spawner.procs.append(proc)
        self.slots[slot] = proc
        return proc

    # --- the sender ------------------------------------------------------------------------------
    async def sender(self) -> None:
        """Release held webhooks in shuffled batches; re-send some (duplicates)."""
        gate = asyncio.Semaphore(32)
        tasks: set[asyncio.Task[None]] = set()
        while not self.stopping:
            try:
                held = (
                    await self.control.get("/_sandbox/webhooks", params={"status": "held"})
                ).json()["data"]
            except httpx.HTTPError:
                held = []
            batch = [d["id"] for d in held if d["id"] not in self.inflight]
            self.rng.shuffle(batch)
            for delivery_id in batch:
                self.inflight.add(delivery_id)
                task = asyncio.create_task(self._send(delivery_id, gate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.3)
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, delivery_id: str, gate: asyncio.Semaphore) -> None:
        try:
            status = await self._deliver(delivery_id, gate)
            while status == "failed" and not self.stopping:
                # The sandbox's sender gave up after its attempts; a real sender's later
                # redelivery (or an operator's resend) sends it again.
                self.resent_after_give_up += 1
                await asyncio.sleep(2)
                status = await self._deliver(delivery_id, gate)
            if status == "delivered" and self.rng.random() < self.o.duplicate_rate:
                await asyncio.sleep(self.rng.uniform(0, 3))
                self.duplicates += 1
                await self._deliver(delivery_id, gate)
        finally:
            self.inflight.discard(delivery_id)

    async def _deliver(self, delivery_id: str, gate: asyncio.Semaphore) -> str:
        async with gate:
            self.sends += 1
            answer = await self.control.post(f"/_sandbox/webhooks/{delivery_id}/send", timeout=900)
            answer.raise_for_status()
            return str(answer.json()["status"])

    # --- orders, refunds and the customer's GHL side ---------------------------------------------
    def plan(self) -> None:
        kinds = []
        for _ in range(self.o.orders):
            roll = self.rng.random()
            kinds.append(
                "checkout"
                if roll < self.o.checkout_rate
                else "pending"
                if roll < self.o.checkout_rate + self.o.pending_rate
                else "paid"
            )
        for n, kind in enumerate(kinds):
            short = uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]
            order = Order(
                id=f"wh_ord_chaos_{short}",
                kind=kind,
                location_id=self.locations[n % len(self.locations)],
                email=f"chaos+{short}@example.com",
            )
            if self.rng.random() < self.o.refund_rate:
                order.refund_id = f"wh_ref_chaos_{short}"
            self.orders.append(order)
        self.rng.shuffle(self.orders)

    def _order_body(self, order: Order, status: str) -> dict[str, Any]:
        body = samples.wizehire_order(order.id)
        body.update(
            status=status,
            ghl_location_id=order.location_id,
            created_at=_now_iso(),
            account_id=f"acct_{order.id[-6:]}",
        )
        body["customer"] = {
            **body["customer"],
            "email": order.email,
            "phone": f"+1555{self.rng.randrange(10**7):07d}",
            "first_name": "Chaos",
            "last_name": order.id[-6:],
        }
        return body

    async def _wizehire_event(self, event_type: str, data: dict[str, Any]) -> None:
        answer = await self.control.post(
            "/_sandbox/wizehire/events", json={"type": event_type, "data": data, "hold": True}
        )
        answer.raise_for_status()

    async def producer(self) -> None:
        spacing = self.o.seconds / max(len(self.orders), 1)
        start = time.monotonic()
        followups: set[asyncio.Task[None]] = set()
        for n, order in enumerate(self.orders):
            await asyncio.sleep(max(0.0, start + n * spacing - time.monotonic()))
            order.submitted_at = time.time()
            if order.kind == "checkout":
                answer = await self.control.post(
                    "/_sandbox/ghl/checkout",
                    json={
                        "location_id": order.location_id,
                        "outcome": "paid",
                        "items": [{"price_id": self.checkout_price[order.location_id], "qty": 1}],
                        "contact": {"email": order.email, "firstName": "Chaos"},
                    },
                )
                answer.raise_for_status()
            body = self._order_body(order, "pending" if order.kind == "pending" else "paid")
            await self._wizehire_event("order.created", {"order": body})
            if order.kind == "pending":
                task = asyncio.create_task(self._pay_later(order, body))
                followups.add(task)
                task.add_done_callback(followups.discard)
        await asyncio.gather(*followups)
        self.submitted.set()

    async def _pay_later(self, order: Order, body: dict[str, Any]) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 5))
        await self._wizehire_event("order.updated", {"order": {**body, "status": "paid"}})

    async def refunds(self) -> None:
        """Note when each order synced; ask for each planned refund once its order is synced;
        act as the human who refunds in GHL once Wizehire hears `manual_action_required`."""
        while not self.stopping:
            try:
                await self._follow_orders()
            except httpx.HTTPError as exc:
                self.say(f"following the orders failed: {exc}")
            await asyncio.sleep(3)

    async def _follow_orders(self) -> None:
        wz_orders = {
            o["id"]: o for o in (await self.control.get("/_sandbox/wizehire/orders")).json()["data"]
        }
        wz_refunds: dict[str, dict[str, Any]] | None = None
        for order in self.orders:
            sync = (wz_orders.get(order.id) or {}).get("ghl_sync") or {}
            if not order.submitted_at or not sync.get("ghl_fulfillment_id"):
                continue
            if order.synced_at is None:
                order.synced_at = time.time()
            if order.refund_id is None or order.ghl_refunded:
                continue
            if not order.refund_requested:
                order.refund_requested = True
                await self._wizehire_event(
                    "refund.requested",
                    {
                        "refund": {
                            "id": order.refund_id,
                            "order_id": order.id,
                            "amount": str(REFUND_AMOUNT),
                            "currency": "USD",
                            "reason_code": "customer_request",
                            "note": "chaos",
                        }
                    },
                )
                continue
            if wz_refunds is None:
                wz_refunds = {
                    r["id"]: r
                    for r in (await self.control.get("/_sandbox/wizehire/refunds")).json()["data"]
                }
            if (wz_refunds.get(order.refund_id) or {}).get("status") == "manual_action_required":
                done = await self.control.post(
                    "/_sandbox/ghl/refunds",
                    json={"order_id": sync["ghl_order_id"], "amount": str(REFUND_AMOUNT)},
                )
                done.raise_for_status()
                order.ghl_refunded = True

    # --- the chaos -------------------------------------------------------------------------------
    async def chaos(self) -> None:
        start = time.monotonic()
        outage_at = start + self.o.seconds * self.rng.uniform(0.35, 0.6)
        outage_done = self.o.outage_seconds <= 0
        while time.monotonic() - start < self.o.seconds:
            await asyncio.sleep(self.o.kill_every * self.rng.uniform(0.5, 1.5))
            if not outage_done and time.monotonic() >= outage_at:
                outage_done = True
                await self._outage()
                continue
            alive = [s for s, p in self.slots.items() if p.alive() and s not in self.restarting]
            if not alive:
                continue
            slot = self.rng.choice(sorted(alive))
            await self._kill_and_restart(slot)
        self.chaos_over.set()

    async def _kill_and_restart(self, slot: str) -> None:
        proc = self.slots[slot]
        self.restarting.add(slot)
        try:
            proc.send(signal.SIGKILL)
            await proc.wait_exit(timeout=30)
            self.kills["api" if slot.startswith("api") else "worker"] += 1
            await asyncio.sleep(self.rng.uniform(0.2, 1.5))
            self._spawn(slot)
        finally:
            self.restarting.discard(slot)

    async def _outage(self) -> None:
        self.say(f"PostgreSQL cut for {self.o.outage_seconds:.0f} s")
        down = time.time()
        # As a restart does: the server ends every session, then refuses connections a while.
        self.terminated_backends += await terminate_backends(self.db_url)
        self.proxy.stop()
        await asyncio.sleep(self.o.outage_seconds)
        self.proxy.start()
        self.outages.append((down, time.time()))

    async def monitor(self) -> None:
        """A process that died without being killed is a finding; it is restarted."""
        while not self.stopping:
            for slot, proc in list(self.slots.items()):
                if slot not in self.restarting and not proc.alive():
                    self.unexpected_exits.append(
                        f"{proc.name} exited {proc.popen.returncode}: {proc.tail(5)}"
                    )
                    self._spawn(slot)
            await asyncio.sleep(1)

    # --- drain -----------------------------------------------------------------------------------
    async def _inbox_counts(self) -> dict[str, int]:
        async with self.reader() as session:
            rows = (
                await session.execute(
                    select(InboxEvent.status, func.count()).group_by(InboxEvent.status)
                )
            ).all()
        return {status: count for status, count in rows}

    def reader(self) -> Any:
        return self._sessionmaker()

    async def drained(self) -> str | None:
        """None when everything has settled, else what is still moving."""
        if not self.submitted.is_set() or not self.chaos_over.is_set():
            return "orders or chaos still running"
        if self.inflight:
            return f"{len(self.inflight)} webhooks being sent"
        for status in ("held", "pending"):
            left = (await self.control.get("/_sandbox/webhooks", params={"status": status})).json()[
                "data"
            ]
            if left:
                return f"{len(left)} webhooks {status}"
        waiting = [o for o in self.orders if o.synced_at is None]
        if waiting:
            return f"{len(waiting)} orders not synced"
        refunds = [o for o in self.orders if o.refund_id and not o.ghl_refunded]
        if refunds:
            return f"{len(refunds)} refunds not yet done in GHL"
        if refunds := [o for o in self.orders if o.refund_id]:
            answer = (await self.control.get("/_sandbox/wizehire/refunds")).json()["data"]
            settled = {r["id"] for r in answer if r.get("status") == "succeeded"}
            missing = [o.refund_id for o in refunds if o.refund_id not in settled]
            if missing:
                return f"{len(missing)} refunds not settled in Wizehire"
        counts = await self._inbox_counts()
        busy = {s: c for s, c in counts.items() if s in ("queued", "running", "retry")}
        if busy:
            return f"inbox {busy}"
        return None

    async def drain(self) -> float:
        started = time.monotonic()
        deadline = started + self.o.drain_timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                state = await self.drained()
            except (httpx.HTTPError, OSError) as exc:
                state = f"check failed: {exc}"
            if state is None:
                return time.monotonic() - started
            if state != last:
                self.say(f"draining: {state}")
                last = state
            await asyncio.sleep(2)
        self.figures.problems.append(f"not drained after {self.o.drain_timeout:.0f} s: {last}")
        return time.monotonic() - started

    # --- the run ---------------------------------------------------------------------------------
    async def run(self) -> Figures:
        load_before = machine_load()
        t0 = time.monotonic()
        self.say(f"work directory {self.workdir}")
        await self.setup()
        engine = create_engine(self.db_url)
        self._sessionmaker = create_sessionmaker(engine)
        self.plan()
        self.say(
            f"set up in {time.monotonic() - t0:.0f} s; {len(self.orders)} orders over "
            f"{self.o.seconds:.0f} s on {len(self.locations)} locations"
        )
        background = [asyncio.create_task(c()) for c in (self.sender, self.refunds, self.monitor)]
        chaos_start = time.time()
        try:
            await asyncio.gather(self.producer(), self.chaos())
            self.say(f"orders in and chaos over after {time.time() - chaos_start:.0f} s; draining")
            drain_seconds = await self.drain()
            # The sandbox settles a last duplicate or two in flight before counting.
            await asyncio.sleep(1)
            await self.judge(time.time() - chaos_start, drain_seconds, load_before)
        finally:
            self.stopping = True
            await asyncio.gather(*background, return_exceptions=True)
            await engine.dispose()
        return self.figures

    async def close(self) -> None:
        self.spawner.close()
        for part in ("balancer", "proxy"):
            if hasattr(self, part):
                getattr(self, part).close()
        if hasattr(self, "control"):
            await self.control.aclose()
        if hasattr(self, "db_url"):
            await asyncio.to_thread(drop_postgres_database, self.db_url)

    async def judge(self, run_seconds: float, drain_seconds: float, load_before: str) -> None:
        records = await collect(self.control, self._sessionmaker)
        f = self.figures
        for name, value in describe(records, self.orders):
            f.add(name, value)
        f.problems += check_orders(self.orders, records)
        f.problems += check_wizehire_once(records)
        f.problems += check_refunds(self.orders, records, self.refund_amount)
        f.problems += check_webhooks(records, self.outages)
        f.problems += check_tokens(records, self.o.token_refresh_every)
        f.problems += check_rate_limits(records)
        f.problems += [f"unexpected exit: {x}" for x in self.unexpected_exits]
        f.add(
            "locations",
            f"{len(self.locations)}, each installed by OAuth; a token is usable "
            f"{self.o.token_refresh_every} s (the service renews 300 s before expiry)",
        )
        f.add(
            "duplicates sent",
            f"{self.duplicates} (plus {self.resent_after_give_up} re-sent "
            "after the sandbox's sender gave up)",
        )
        f.add(
            "kills (SIGKILL + restart)",
            f"{sum(self.kills.values())} ({self.kills['api']} API, {self.kills['worker']} worker)",
        )
        cut = "; ".join(f"{up - down:.1f} s" for down, up in self.outages) or "none"
        f.add("PostgreSQL cut", f"{cut} ({self.terminated_backends} sessions terminated)")
        f.add(
            "time",
            f"chaos phase {self.o.seconds:.0f} s, drained {drain_seconds:.0f} s after "
            f"it, {run_seconds:.0f} s in all",
        )
        f.add("load before", load_before)
        f.add("load after", machine_load())
        f.numbers.update(
            orders=len(self.orders),
            kills=sum(self.kills.values()),
            outages=len(self.outages),
            duplicates=self.duplicates,
            faults=faults_injected(records),
            answered=answered_2xx(records),
            events=len(records.inbox),
            drain_seconds=drain_seconds,
            run_seconds=run_seconds,
        )


async def run_chaos(options: Options, workdir: Path | None = None, say: Any = print) -> Figures:
    """Set up, run, check, tear down; the work directory (process logs) stays on problems."""
    own = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="wizesync-chaos-"))
    chaos = Chaos(options, workdir, say)
    try:
        figures = await chaos.run()
    except BaseException:
        say(f"process logs kept in {workdir}")
        raise
    finally:
        await chaos.close()
    if own and not figures.problems and not options.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    elif figures.problems:
        say(f"process logs kept in {workdir}")
    return figures
