"""`make demo`: the whole sync, end to end, on this machine, in about a minute.

Starts `wizesync sandbox` (fake GHL + fake Wizehire) and `wizesync serve` (a temporary SQLite
database, in-process worker, poller every 5 s) on free loopback ports, then plays one order's life:
a signed Wizehire `order.created` (the service upserts the contact, creates the invoice, records
the payment in GHL, finds GHL's order, fulfils it and tells Wizehire), a `refund.requested`
(the payment was recorded offline, so `auto` asks a human: Wizehire hears
`manual_action_required` with the reason), the refund done by a "human" in GHL (the sandbox's
control plane; GHL sends no webhook for it) and the poller noticing it (Wizehire hears
`succeeded`). Then a purchase through a GHL checkout paid with Stripe, refunded at the sandbox's
fake Stripe by the `auto` executor (Wizehire hears `succeeded` with `gateway` and
`gateway_refund_id`; GHL's transaction shows `amountRefunded`). Prints what each system holds
and `/sync-status`. Both processes stop at the end, on error and on Ctrl-C.

`benchmarks/flows.py` reuses `Stack` from here, so both measure the same setup.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from wizesync import samples
from wizesync.config import DEV_WIZEHIRE_SECRET
from wizesync.signing import wizehire_headers
from wizesync_sandbox import defaults

WIZESYNC = str(Path(sys.executable).with_name("wizesync"))
STEP_TIMEOUT = 60.0  # seconds any one step may take before the demo gives up and says so


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mapping_yaml() -> str:
    """The sample SKUs -> the prices/products `wizesync sandbox` seeds (ids from its defaults)."""
    seeded = {
        "JOB-BOOST-30": (defaults.BOOST_PRICE_ID, defaults.BOOST_PRODUCT_ID),
        "HIRING-PLAN-MONTHLY": (defaults.PLAN_PRICE_ID, defaults.PLAN_PRODUCT_ID),
    }
    lines = ["locations:", f"  default: {defaults.DEFAULT_LOCATION_ID}", "products:"]
    for sku, (price, product) in seeded.items():
        lines += [f"  {sku}:", f"    price_id: {price}", f"    product_id: {product}"]
    lines += [
        "fulfillment:",
        "  notify_customer: true",
        "refunds:",
        "  executor: auto",
        "  gateways:",
        "    default:",
    ]
    for gateway, fields in defaults.SANDBOX_GATEWAYS["default"].items():
        lines.append(f"      {gateway}: {{{', '.join(f'{k}: {v}' for k, v in fields.items())}}}")
    return "\n".join(lines) + "\n"


@dataclass
class Stack:
    """The sandbox and the service as two child processes on loopback."""

    poll_interval: int = 5
    extra_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wizesync-demo-")))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sandbox_port, self.service_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.service_url = f"http://127.0.0.1:{self.service_port}"
        self.http = httpx.Client(timeout=10)

    # --- processes ------------------------------------------------------------------------------
    def start(self) -> None:
        (self.workdir / "mapping.yaml").write_text(mapping_yaml())
        self._spawn(
            "sandbox",
            [
                WIZESYNC,
                "sandbox",
                "--port",
                str(self.sandbox_port),
                "--service-url",
                self.service_url,
            ],
            os.environ.copy(),
        )
        env = {
            **os.environ,
            **defaults.service_env(self.sandbox_url),
            "WIZESYNC_ENV": "development",
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'wizesync.db'}",
            "MAPPING_FILE": str(self.workdir / "mapping.yaml"),
            "POLL_INTERVAL_SECONDS": str(self.poll_interval),
            "WORKER": "inprocess",
            "LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        for key in ("ADMIN_TOKEN", "GHL_CLIENT_ID", "SLACK_WEBHOOK_URL"):
            env.pop(key, None)
        self._spawn(
            "service", [WIZESYNC, "serve", "--migrate", "--port", str(self.service_port)], env
        )
        self.wait_for("the sandbox", lambda: self._ok(f"{self.sandbox_url}/_sandbox/config"))
        self.wait_for("the service to be ready", lambda: self._ok(f"{self.service_url}/ready"))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        # cwd = the temp dir, so a developer's .env is not read; own session, so Ctrl-C in the
        # terminal reaches the demo only and it stops the children itself, in order.
        self.procs.append(
            subprocess.Popen(  # noqa: S603
                argv,
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def stop(self) -> None:
        self.http.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- helpers --------------------------------------------------------------------------------
    def _ok(self, url: str) -> bool:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{proc.args[1]} exited with {proc.returncode}:\n"
                    + self.log_tail(str(proc.args[1]).replace("serve", "service"))
                )
        try:
            return self.http.get(url).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_for(
        self, what: str, check: Callable[[], Any], timeout: float = STEP_TIMEOUT, every: float = 0.1
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(every)
        raise TimeoutError(f"gave up waiting {timeout:.0f} s for {what}")

    def send_wizehire(self, event_type: str, data: dict[str, Any]) -> httpx.Response:
        """Signed like `wizesync trigger` (Standard Webhooks, the development secret)."""
        body = json.dumps(
            {
                "type": event_type,
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "data": data,
            }
        ).encode()
        response = self.http.post(
            f"{self.service_url}/webhooks/wizehire",
            content=body,
            headers=wizehire_headers(DEV_WIZEHIRE_SECRET, body),
        )
        response.raise_for_status()
        return response

    def sandbox(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"{self.sandbox_url}/_sandbox{path}", params=params)
        response.raise_for_status()
        return response.json()

    def sandbox_post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(f"{self.sandbox_url}/_sandbox{path}", json=body)
        response.raise_for_status()
        return response.json()

    def ghl(self) -> dict[str, Any]:
        return dict(self.sandbox("/state", location_id=defaults.DEFAULT_LOCATION_ID)["ghl"])

    def wizehire_order(self, order_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"{self.sandbox_url}/_sandbox/wizehire/orders/{order_id}")
        return response.json() if response.status_code == 200 else None

    def wizehire_refund(self, refund_id: str) -> dict[str, Any] | None:
        refunds = self.sandbox("/wizehire/refunds").get("data", [])
        return next((r for r in refunds if r.get("id") == refund_id), None)


# --- the demo ------------------------------------------------------------------------------------


def _sync_of(stack: Stack, order_id: str) -> dict[str, Any] | None:
    """The last sync body the service PATCHed for the order, once it names a fulfillment."""
    order = stack.wizehire_order(order_id)
    sync = (order or {}).get("ghl_sync") or {}
    return order if sync.get("ghl_fulfillment_id") else None


def run_demo(stack: Stack, console: Any) -> None:
    from rich.pretty import Pretty
    from rich.table import Table

    order = samples.wizehire_order()
    order_id = order["id"]
    console.rule("1. Wizehire order.created")
    answer = stack.send_wizehire("order.created", {"order": order})
    console.print(
        f"POST /webhooks/wizehire {order_id} ({order['amount']} {order['currency']}, "
        f"{order['items'][0]['sku']}, status {order['status']}) -> "
        f"{answer.status_code} {answer.text}"
    )
    started = time.monotonic()
    synced = stack.wait_for(f"order {order_id} synced", lambda: _sync_of(stack, order_id))
    sync = synced["ghl_sync"]
    console.print(
        f"synced in {time.monotonic() - started:.2f} s: GHL order "
        f"{sync.get('ghl_order_id')}, fulfillment {sync.get('ghl_fulfillment_id')}, "
        f"payment_status {sync.get('payment_status')}"
    )

    console.rule("2. Wizehire refund.requested (paid offline: auto asks a human)")
    refund_id = f"wh_ref_{order_id.removeprefix('wh_ord_')}"
    refund = {
        "id": refund_id,
        "order_id": order_id,
        "amount": "49.00",
        "currency": "USD",
        "reason_code": "customer_request",
        "note": "demo refund",
    }
    answer = stack.send_wizehire("refund.requested", {"refund": refund})
    console.print(
        f"POST /webhooks/wizehire refund {refund_id} 49.00 USD -> "
        f"{answer.status_code} {answer.text}"
    )
    pending = stack.wait_for(
        "the refund to need a human",
        lambda: (
            (r := stack.wizehire_refund(refund_id))
            and r.get("status") not in (None, "pending")
            and r
        ),
    )
    console.print(
        f"Wizehire refund {refund_id}: {pending.get('status')} "
        f"({pending.get('failure_reason') or 'a human refunds it in GHL'})"
    )

    console.rule("3. The refund done in GHL (sandbox control plane; GHL sends no webhook)")
    done = stack.sandbox_post("/ghl/refunds", {"order_id": sync["ghl_order_id"], "amount": 49})
    txn = done["transaction"]
    console.print(
        f"GHL transaction {txn['_id']}: amount {txn.get('amount')}, amountRefunded "
        f"{txn.get('amountRefunded')}; order paymentStatus "
        f"{(done.get('order') or {}).get('paymentStatus')}"
    )
    console.print(f"waiting for the poller (POLL_INTERVAL_SECONDS={stack.poll_interval}) ...")
    started = time.monotonic()
    settled = stack.wait_for(
        "the poller to settle the refund",
        lambda: (r := stack.wizehire_refund(refund_id)) and r.get("status") == "succeeded" and r,
    )
    console.print(
        f"Wizehire refund {refund_id}: {settled['status']} after {time.monotonic() - started:.1f} s"
    )
    stack.wait_for(
        "the order's payment state to follow",
        lambda: (
            (o := stack.wizehire_order(order_id))
            and (o.get("ghl_sync") or {}).get("payment_status") == "partially_refunded"
        ),
        timeout=30,
    )

    gateway_refund(stack, console)

    console.rule("What fake GHL holds")
    ghl = stack.ghl()
    table = Table("object", "id", "what")
    for c in ghl["contacts"]:
        table.add_row(
            "contact", c["id"], f"{c.get('firstName')} {c.get('lastName')} <{c.get('email')}>"
        )
    for i in ghl["invoices"]:
        table.add_row(
            "invoice",
            i["_id"],
            f"{i.get('status')} total {i.get('total')} "
            f"paid {i.get('amountPaid')} {i.get('currency')}",
        )
    for o in ghl["orders"]:
        table.add_row(
            "order",
            o["_id"],
            f"{o.get('status')}/{o.get('paymentStatus')} "
            f"{o.get('amount')} {o.get('currency')} source "
            f"{(o.get('source') or {}).get('type')} {(o.get('source') or {}).get('id')}",
        )
    for ghl_order_id, fulfillments in ghl["fulfillments"].items():  # by GHL order id
        for f in fulfillments:
            items = ", ".join(
                f"{(it.get('price') or {}).get('_id')} x{it.get('qty')}"
                for it in f.get("items", [])
            )
            tracking = (f.get("trackings") or [{}])[0]
            table.add_row(
                "fulfillment",
                f["_id"],
                f"order {ghl_order_id}: {items}; "
                f"{tracking.get('shippingCarrier')} {tracking.get('trackingUrl')}",
            )
    for t in ghl["transactions"]:
        table.add_row(
            "transaction",
            t["_id"],
            f"{t.get('status')} amount {t.get('amount')} "
            f"amountRefunded {t.get('amountRefunded')} {t.get('currency')}",
        )
    console.print(table)

    console.rule("What fake Wizehire recorded (the service's PATCHes)")
    calls = stack.sandbox("/wizehire/calls", method="PATCH")["data"]
    table = Table("#", "PATCH", "answer", "key facts")
    for n, call in enumerate(calls, 1):
        body = call.get("body") or call.get("json") or {}
        facts = {
            k: body[k]
            for k in (
                "payment_status",
                "amount_paid",
                "amount_refunded",
                "status",
                "ghl_order_id",
                "ghl_fulfillment_id",
                "failure_reason",
                "amount",
            )
            if body.get(k) is not None
        }
        # A replay (same Idempotency-Key and body) had no second effect in Wizehire.
        answer = f"{(call.get('response') or {}).get('status')}" + (
            " replayed" if call.get("replayed") else ""
        )
        table.add_row(str(n), str(call.get("path")), answer, json.dumps(facts))
    console.print(table)
    console.print(Pretty(stack.wizehire_order(order_id)))

    console.rule("/sync-status")
    console.print(Pretty(stack.http.get(f"{stack.service_url}/sync-status").json()))


def gateway_refund(stack: Stack, console: Any) -> None:
    """A GHL checkout paid with Stripe, then a Wizehire refund the `auto` executor makes at
    the (fake) Stripe that holds the money."""
    console.rule("4. A GHL checkout paid with Stripe, refunded at Stripe (auto executor)")
    bought = stack.sandbox_post(
        "/ghl/checkout",
        {
            "location_id": defaults.DEFAULT_LOCATION_ID,
            "provider": "stripe",
            "items": [{"price_id": defaults.BOOST_PRICE_ID, "qty": 1}],
        },
    )
    ghl_order, txn = bought["order"], bought["transaction"]
    console.print(
        f"GHL checkout: order {ghl_order['_id']}, transaction {txn['_id']} "
        f"({txn['paymentProviderType']} charge {txn['chargeId']})"
    )
    order = samples.wizehire_order()
    order.update(ghl_order_id=ghl_order["_id"], ghl_location_id=defaults.DEFAULT_LOCATION_ID)
    stack.send_wizehire("order.created", {"order": order})
    stack.wait_for(
        f"order {order['id']} linked to the checkout",
        lambda: (
            (o := stack.wizehire_order(order["id"]))
            and (o.get("ghl_sync") or {}).get("payment_status") == "paid"
        ),
    )
    refund_id = f"wh_ref_{order['id'].removeprefix('wh_ord_')}"
    stack.send_wizehire(
        "refund.requested",
        {
            "refund": {
                "id": refund_id,
                "order_id": order["id"],
                "amount": "49.00",
                "currency": "USD",
                "reason_code": "service_issue",
                "note": "demo gateway refund",
            }
        },
    )
    started = time.monotonic()
    done = stack.wait_for(
        "the gateway refund",
        lambda: (r := stack.wizehire_refund(refund_id)) and r.get("status") == "succeeded" and r,
    )
    console.print(
        f"Wizehire refund {refund_id}: {done['status']} in "
        f"{time.monotonic() - started:.2f} s, gateway {done.get('gateway')}, "
        f"gateway_refund_id {done.get('gateway_refund_id')}"
    )
    for made in stack.sandbox("/gateways/refunds"):
        console.print(
            f"fake {made['gateway']}: {made['action']} {made['id']} of "
            f"{made['amount']} {made['currency']} on charge {made['charge_id']}"
        )
    shown = next(t for t in stack.ghl()["transactions"] if t["_id"] == txn["_id"])
    console.print(f"GHL transaction {txn['_id']}: amountRefunded {shown.get('amountRefunded')}")


def main() -> int:
    from rich.console import Console

    console = Console()
    stack = Stack(poll_interval=5)
    console.print(
        f"starting sandbox on {stack.sandbox_url} and service on {stack.service_url} "
        f"(logs and SQLite in {stack.workdir})"
    )
    try:
        with stack:
            run_demo(stack, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: both processes stopped[/yellow]")
        return 130
    except (TimeoutError, RuntimeError, httpx.HTTPError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        console.print("[dim]service log tail:[/dim]\n" + stack.log_tail("service"))
        return 1
    shutil.rmtree(stack.workdir, ignore_errors=True)  # kept only when something went wrong
    console.print("[green]done: both processes stopped[/green]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
