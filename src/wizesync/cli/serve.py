"""`wizesync serve`, `worker` and `migrate`: the service's processes and its schema."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer

from wizesync.cli.common import console, err, settings_or_exit
from wizesync.config import Settings


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
    serve_app(
        "wizesync.app:create_app",
        host=host,
        port=port,
        migrate=migrate,
        workers=workers,
        log_format=log_format,
        expose_development=expose_development,
    )


def serve_app(
    factory: str,
    *,
    host: str,
    port: int,
    migrate: bool,
    workers: int,
    log_format: str | None,
    expose_development: bool,
) -> None:
    """`serve`, with the app from `factory` (`wizesync dev` serves the sandbox's composition)."""
    import uvicorn

    from wizesync.logs import configure_logging
    from wizesync.netcheck import is_loopback_host

    settings = settings_or_exit()
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
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=settings.log_level.upper() == "DEBUG",
        timeout_graceful_shutdown=30,
    )


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

    settings = settings_or_exit()
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
    from wizesync.flows.payments.poller import build_poller
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


def migrate() -> None:
    """Bring the database schema to the latest revision."""
    _migrate(settings_or_exit())
