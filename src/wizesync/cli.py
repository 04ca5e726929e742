"""The `wizesync` command: serve, worker, migrate, events, trigger, doctor."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from wizesync.cli_mapping import ghl_catalog, mapping_app
from wizesync.config import ConfigError, Settings, load_settings
from wizesync.ghl.providers_cli import providers_app
from wizesync.reconcile.cli import reconcile as reconcile_command
from wizesync.tokens_cli import tokens_app

app = typer.Typer(help="wizesync: Wizehire <-> HighLevel payments sync", no_args_is_help=True)
events_app = typer.Typer(help="Inspect and replay inbox events", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.command("reconcile")(reconcile_command)
app.add_typer(tokens_app, name="tokens")
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    """Settings, or a message in words and exit 2."""
    try:
        return load_settings()
    except (ValidationError, ConfigError) as exc:
        err.print(f"[red]configuration error:[/red] {_config_message(exc)}")
        raise typer.Exit(2) from None


def _config_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in e["loc"]).upper()
            msg = str(e["msg"]).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "; ".join(parts)
    return str(exc)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    migrate: Annotated[bool, typer.Option(help="run migrations first")] = False,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    log_format: Annotated[
        str | None,
        typer.Option(help="json or console; auto: console on a terminal unless LOG_FORMAT is set"),
    ] = None,
    expose_development: Annotated[
        bool,
        typer.Option(
            help="serve a non-production service on a non-loopback interface anyway",
            envvar="WIZESYNC_EXPOSE_DEVELOPMENT",
        ),
    ] = False,
) -> None:
    """Run the HTTP service (and, with WORKER=inprocess, the worker in the same process)."""
    import uvicorn

    from wizesync.logs import configure_logging
    from wizesync.netcheck import is_loopback_host

    settings = _settings()
    if not settings.is_production and not is_loopback_host(host) and not expose_development:
        err.print(
            f"[red]refusing to serve {settings.wizesync_env} on {host}:[/red] it accepts "
            "development secrets; bind to 127.0.0.1, set WIZESYNC_ENV=production, or pass "
            "--expose-development (WIZESYNC_EXPOSE_DEVELOPMENT=1) if you mean it"
        )
        raise typer.Exit(2)
    configure_logging(settings.log_level, _log_format(settings, log_format))
    if migrate:
        _migrate(settings)
    uvicorn.run(
        "wizesync.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=settings.log_level.upper() == "DEBUG",
        timeout_graceful_shutdown=30,
    )


@app.command()
def worker(
    grace: Annotated[float, typer.Option(help="seconds in-flight work gets on SIGTERM")] = 20.0,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="exit 0 if a worker on this host has a fresh heartbeat, else 1 (a healthcheck)",
        ),
    ] = False,
    metrics_port: Annotated[
        int,
        typer.Option(
            help="serve this process's Prometheus metrics on this port (0: off)",
            envvar="WORKER_METRICS_PORT",
        ),
    ] = 0,
    metrics_host: Annotated[str, typer.Option(help="interface for --metrics-port")] = "0.0.0.0",
) -> None:
    """Run a worker process (use with WORKER=off on the API)."""
    from wizesync.logs import configure_logging

    settings = _settings()
    if check:
        from wizesync.worker_check import check_worker

        alive, message = asyncio.run(check_worker(settings))
        (console if alive else err).print(message, highlight=False)
        raise typer.Exit(0 if alive else 1)
    configure_logging(settings.log_level, settings.log_format)
    if metrics_port:
        from prometheus_client import start_http_server

        # No token here: the port is for the private network only (compose does not publish it).
        start_http_server(metrics_port, addr=metrics_host)
    asyncio.run(_run_worker(settings, grace))


def _log_format(settings: Settings, option: str | None) -> str:
    """`--log-format` beats LOG_FORMAT, except `auto` (what `make run` passes), which yields to
    an explicit LOG_FORMAT and otherwise means console on a terminal, JSON lines elsewhere."""
    if option is None:
        return settings.log_format
    if option == "auto":
        if "log_format" in settings.model_fields_set:
            return settings.log_format
        return "console" if sys.stderr.isatty() else "json"
    if option not in ("json", "console"):
        err.print("--log-format is json, console or auto")
        raise typer.Exit(2)
    return option


async def _run_worker(settings: Settings, grace: float) -> None:
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.flows.poller import build_poller
    from wizesync.flows.services import build_services
    from wizesync.ghl.http_client import build_http_client
    from wizesync.inbox.registry import load_handlers
    from wizesync.inbox.worker import Worker

    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    http = build_http_client(settings)
    services = build_services(settings, sessionmaker, http)
    from wizesync.reconcile.runtime import build_scheduler

    the_worker = Worker(
        settings=settings,
        sessionmaker=sessionmaker,
        registry=load_handlers(settings.handler_modules),
        services=services,
        companions=[
            build_poller(settings, sessionmaker, services).run,
            build_scheduler(settings, sessionmaker, services, http).run,
        ],
    )
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        if not stopping:
            stopping.append(asyncio.create_task(the_worker.stop(grace)))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await the_worker.run()
        if stopping:
            await stopping[0]
    finally:
        await http.aclose()
        await engine.dispose()


def _migrate(settings: Settings) -> None:
    from wizesync.db.migrate import upgrade_head

    try:
        upgrade_head(settings.database_url)
    except Exception as exc:
        err.print(f"[red]migration failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print("database is at the latest schema")


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest revision."""
    _migrate(_settings())


# --- events ------------------------------------------------------------------------------------


async def _with_session(fn: Any) -> Any:
    from wizesync.db.engine import create_engine, create_sessionmaker

    engine = create_engine(_settings().database_url)
    try:
        return await fn(create_sessionmaker(engine))
    finally:
        await engine.dispose()


@events_app.command("list")
def events_list(
    status: Annotated[str | None, typer.Option(help="queued, retry, dead, ...")] = None,
    source: Annotated[str | None, typer.Option(help="wizehire or ghl")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Newest inbox events first."""
    from wizesync.db import inbox_repo

    async def run(sessionmaker: Any) -> Any:
        async with sessionmaker() as session:
            return await inbox_repo.list_events(session, status=status, source=source, limit=limit)

    rows = asyncio.run(_with_session(run))
    table = Table("id", "source", "type", "status", "attempts", "received", "last error")
    for e in rows:
        table.add_row(
            str(e.id),
            e.source,
            e.type,
            e.status,
            str(e.attempts),
            e.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            (e.last_error or "")[:60],
        )
    console.print(table)


@events_app.command("show")
def events_show(event_id: int) -> None:
    """One event with its attempts (JSON)."""
    from wizesync.db import inbox_repo
    from wizesync.ops.routes import event_summary

    async def run(sessionmaker: Any) -> Any:
        async with sessionmaker() as session:
            return await inbox_repo.get_event(session, event_id)

    event = asyncio.run(_with_session(run))
    if event is None:
        err.print(f"no event {event_id}")
        raise typer.Exit(1)
    out = event_summary(event) | {
        "payload": event.payload,
        "attempt_log": [
            {
                "attempt": a.attempt,
                "worker_id": a.worker_id,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "outcome": a.outcome,
                "error": a.error,
                "outbound_calls": a.outbound_calls or [],
            }
            for a in event.attempt_log
        ],
    }
    console.print_json(json.dumps(out, default=str))


@events_app.command("replay")
def events_replay(event_ids: list[int]) -> None:
    """Re-queue dead, quarantined, ignored or done events."""
    from wizesync.inbox.replay import replay

    async def run(sessionmaker: Any) -> list[str]:
        failures = []
        for event_id in event_ids:
            try:
                result = await replay(sessionmaker, event_id)
            except ValueError as exc:
                failures.append(str(exc))
                continue
            if result is None:
                failures.append(f"no event {event_id}")
            else:
                console.print(f"event {event_id} re-queued")
        return failures

    failures = asyncio.run(_with_session(run))
    for failure in failures:
        err.print(f"[red]{failure}[/red]")
    if failures:
        raise typer.Exit(1)


from wizesync.inbox.purge_cli import events_purge  # noqa: E402  (registered beside the others)

events_app.command("purge")(events_purge)


# --- trigger -----------------------------------------------------------------------------------


@app.command()
def trigger(
    event_type: Annotated[
        str, typer.Argument(help="e.g. order.created, refund.requested, OrderCreate, InvoicePaid")
    ],
    url: Annotated[
        str, typer.Option(help="base URL of the running service", envvar="WIZESYNC_URL")
    ] = "http://127.0.0.1:8000",
    order_id: Annotated[str | None, typer.Option(help="order id to use")] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="Wizehire secret (default: configured)", envvar="TRIGGER_WIZEHIRE_SECRET"
        ),
    ] = None,
) -> None:
    """Send a correctly signed sample event to a running service, like `stripe trigger`. With a
    sandbox (`make run`'s built-in one, or `wizesync sandbox`) the sample names its location and
    objects it holds (the newest order, Wizehire's newest paid order for a refund)."""
    import httpx

    from wizesync import samples
    from wizesync.sandbox.signing import ghl_headers, wizehire_headers
    from wizesync.trigger import TriggerError, build

    settings = _settings()
    try:
        with httpx.Client(timeout=10) as client:
            built = build(
                event_type, settings=settings, service_url=url, order_id=order_id, http=client
            )
    except KeyError:
        err.print(
            f"unknown event type {event_type!r}; one of: "
            + ", ".join(samples.WIZEHIRE_TYPES + samples.GHL_TYPES)
        )
        raise typer.Exit(2) from None
    except (TriggerError, httpx.HTTPError) as exc:
        err.print(f"[red]cannot build the sample:[/red] {exc}")
        raise typer.Exit(1) from None
    body = json.dumps(built.body).encode()
    if built.source == "wizehire":
        key = secret or settings.wizehire_webhook_secrets[0]
        headers, path = wizehire_headers(key, body), "/webhooks/wizehire"
    else:
        headers, path = ghl_headers(body), "/webhooks/ghl"
    if built.note:
        err.print(f"sample: {built.note}")
    try:
        response = httpx.post(url.rstrip("/") + path, content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        err.print(f"[red]could not reach {url}:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{response.status_code} {response.text}")
    if response.status_code >= 300:
        raise typer.Exit(1)


# --- doctor ------------------------------------------------------------------------------------


@app.command()
def doctor(
    go_live: Annotated[
        bool,
        typer.Option(
            "--go-live",
            help="also what production needs, and a signed webhook round trip through --url",
        ),
    ] = False,
    url: Annotated[
        str, typer.Option(help="the running service (--go-live)", envvar="WIZESYNC_URL")
    ] = "http://127.0.0.1:8000",
    test_order: Annotated[
        bool,
        typer.Option(
            "--test-order", help="--go-live: also a sample order through the sandbox (staging)"
        ),
    ] = False,
) -> None:
    """Check configuration, database, migrations, webhook keys, GHL tokens and scopes, and
    Wizehire's API; say what is wrong in words. `--go-live`: the production checklist
    (docs/GO-LIVE.md)."""
    from wizesync.doctor import run_checks
    from wizesync.doctor_golive import run_go_live

    try:
        settings = load_settings()
    except (ValidationError, ConfigError) as exc:
        err.print(f"[red]✗ configuration:[/red] {_config_message(exc)}")
        raise typer.Exit(1) from None
    results = asyncio.run(
        run_go_live(settings, service_url=url, test_order=test_order)
        if go_live
        else run_checks(settings)
    )
    for ok, name, message in results:
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        console.print(f"{mark} {name}: {message}")
    if not all(ok for ok, _, _ in results):
        raise typer.Exit(1)


# --- mapping ---------------------------------------------------------------------------------

app.add_typer(mapping_app, name="mapping")


# --- ghl ---------------------------------------------------------------------------------------

ghl_app = typer.Typer(
    help="HighLevel: the install link, catalog, white-label providers", no_args_is_help=True
)
app.add_typer(ghl_app, name="ghl")
ghl_app.add_typer(providers_app, name="providers")
ghl_app.command("catalog")(ghl_catalog)


@ghl_app.command("install-url")
def ghl_install_url(
    user_type: Annotated[
        str, typer.Option(help="Location (sub-account install) or Company (agency install)")
    ] = "Location",
) -> None:
    """Print a GHL install link with a fresh one-time state (valid 10 minutes, usable once)."""
    from wizesync.ghl.installs import STATE_TTL, new_state
    from wizesync.ghl.oauth import authorize_url

    if user_type not in ("Location", "Company"):
        err.print("--user-type is Location or Company")
        raise typer.Exit(2)
    settings = _settings()
    if not (settings.ghl_client_id and settings.ghl_redirect_uri):
        err.print(
            "[red]OAuth mode is not configured:[/red] set GHL_CLIENT_ID, "
            "GHL_CLIENT_SECRET and GHL_REDIRECT_URI (the app's redirect URI, "
            "https://<this service>/oauth/ghl/callback)"
        )
        raise typer.Exit(2)

    async def run(sessionmaker: Any) -> str:
        async with sessionmaker.begin() as session:
            return await new_state(session, user_type)

    state = asyncio.run(_with_session(run))
    console.print(authorize_url(settings, state), soft_wrap=True, highlight=False)
    minutes = int(STATE_TTL.total_seconds() // 60)
    err.print(f"valid for {minutes} minutes, once.")
    if settings.ghl_redirect_uri.endswith("/oauth/ghl/callback"):
        stable = settings.ghl_redirect_uri.removesuffix("/callback") + "/install"
        err.print(f"A link that never expires (it makes a fresh state each time): {stable}")


# --- sandbox -----------------------------------------------------------------------------------


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="ONE port for both fakes")] = 8010,
    service_url: Annotated[
        str,
        typer.Option(
            help="base URL of the service that receives the signed webhooks ('' for none)"
        ),
    ] = "http://127.0.0.1:8000",
    wizehire_secret: Annotated[
        str | None,
        typer.Option(
            help="Standard Webhooks secret for Wizehire events (default: the development secret)",
            envvar="SANDBOX_WIZEHIRE_SECRET",
        ),
    ] = None,
    webhooks: Annotated[
        str, typer.Option(help="send | hold | off: what happens to webhooks on state changes")
    ] = "send",
    seed: Annotated[
        bool, typer.Option("--seed/--empty", help="start with a demo location and products")
    ] = True,
) -> None:
    """Run the fake GHL and fake Wizehire on one port: GHL at /ghl, Wizehire at /wizehire, the
    control plane at /_sandbox (see /docs). Development only."""
    from wizesync.sandbox.runner import run

    if webhooks not in ("send", "hold", "off"):
        err.print("--webhooks must be send, hold or off")
        raise typer.Exit(2)
    run(
        host=host,
        port=port,
        service_url=service_url,
        wizehire_secret=wizehire_secret,
        webhooks=webhooks,
        seed=seed,
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
