"""Logs: JSON lines, the event in context inside the worker, and secrets redacted everywhere."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import make_settings
from tests.support.ops_kit import order_event
from tests.support.signing import wizehire_request
from tests.support.waiting import wait_for_status
from wizesync.inbox.registry import HandlerRegistry
from wizesync.logs import REDACTED, configure_logging, redact, redact_text

# Loggers configure_logging touches; restored after each test so others see pytest's setup.
TOUCHED = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore", "aiosqlite")


@pytest.fixture
def json_logs() -> Iterator[Callable[[str], None]]:
    """`configure(level)` installs the service's logging; returns a reader of what it wrote."""
    saved = {
        name: (
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
        )
        for name in TOUCHED
    }

    yield configure_logging
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def captured(capfd: pytest.CaptureFixture[str]) -> tuple[str, list[dict[str, Any]]]:
    """Everything written to stdout and stderr, and the log records among it (stderr)."""
    out, err = capfd.readouterr()
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return out + err, records


# --- format ---------------------------------------------------------------------------------------


def test_every_log_line_is_a_json_object(json_logs, capfd) -> None:
    json_logs("INFO")
    log = logging.getLogger("wizesync.test")
    log.info("plain message %s", "with args", extra={"inbox_id": 7, "outcome": "done"})
    log.debug("not shown at INFO")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("with a traceback")
    _, records = captured(capfd)
    assert [r["msg"] for r in records] == ["plain message with args", "with a traceback"]
    first, second = records
    assert first["level"] == "info" and first["logger"] == "wizesync.test"
    assert first["inbox_id"] == 7 and first["outcome"] == "done" and first["ts"]
    assert second["level"] == "error" and "ValueError: boom" in second["error"]


async def test_a_record_logged_in_a_handler_names_its_event(
    json_logs, capfd, client_factory
) -> None:
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx: Any) -> None:
        logging.getLogger("wizesync.flows.test").info("creating the GHL invoice")

    json_logs("INFO")
    client = await client_factory(registry=registry)
    body, headers = wizehire_request(order_event(), event_id="msg_logged_event")
    inbox_id = (await client.post("/webhooks/wizehire", content=body, headers=headers)).json()["id"]
    await wait_for_status(client, inbox_id, "done")
    # The worker commits "done" a moment before it logs the attempt's end: wait for the line.
    records: list[dict[str, Any]] = []
    for _ in range(100):
        records += captured(capfd)[1]
        if any(r["msg"] == "attempt finished" for r in records):
            break
        await asyncio.sleep(0.05)
    inside = next(r for r in records if r["msg"] == "creating the GHL invoice")
    assert inside["inbox_id"] == inbox_id
    assert inside["event_id"] == "msg_logged_event"
    assert inside["source"] == "wizehire" and inside["type"] == "order.created"
    assert inside["attempt"] == 1 and inside["worker_id"]
    finished = next(r for r in records if r["msg"] == "attempt finished")
    assert finished["inbox_id"] == inbox_id and finished["outcome"] == "done"
    # Outside an attempt the context is gone again.
    logging.getLogger("wizesync.test").info("after")
    _, records = captured(capfd)
    assert "inbox_id" not in records[-1]


# --- redaction ------------------------------------------------------------------------------------

SECRET_TEXTS = {
    "bearer token": ("Authorization: Bearer eyJhbGciOi.J9abc-_x~+/=", "eyJhbGciOi"),
    "whsec secret": ("secret is whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYq"),
    "webhook signature": (
        "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "g0hM9SsE",
    ),
    "access token in a query": ("GET /x?access_token=at-12345&y=1", "at-12345"),
    "refresh token in JSON": ('{"refresh_token": "rt-67890", "scope": "a b"}', "rt-67890"),
    "client_secret in a form": ("client_id=c&client_secret=cs-13579&grant_type=x", "cs-13579"),
    "password in a URL": ("postgresql+asyncpg://wizesync:pw-24680@db:5432/wz", "pw-24680"),
}


@pytest.mark.parametrize("case", sorted(SECRET_TEXTS))
def test_secrets_in_text_are_redacted(case: str) -> None:
    text, secret = SECRET_TEXTS[case]
    cleaned = redact_text(text)
    assert secret not in cleaned and REDACTED in cleaned


def test_redaction_keeps_what_is_not_secret() -> None:
    assert redact_text("Authorization: Bearer abc") == f"Authorization: Bearer {REDACTED}"
    assert (
        redact_text("postgresql+asyncpg://u:p@db/wz") == f"postgresql+asyncpg://u:{REDACTED}@db/wz"
    )
    assert redact_text("order wh_ord_1001 paid 149.00 USD") == "order wh_ord_1001 paid 149.00 USD"


def test_secret_keys_are_redacted_at_any_depth() -> None:
    value = {
        "client_secret": "cs-1",
        "access_token": "at-2",
        "password": "pw-3",
        "headers": {
            "Authorization": "Bearer at-4",
            "Content-Type": "application/json",
            "webhook-signature": "v1,abc",
        },
        "calls": [{"url": "https://x/?access_token=at-5", "refresh_token": "rt-6"}],
        "status": 200,
        "order_id": "wh_ord_1",
    }
    cleaned = json.dumps(redact(value))
    for secret in ("cs-1", "at-2", "pw-3", "at-4", "v1,abc", "at-5", "rt-6"):
        assert secret not in cleaned, secret
    assert redact(value)["headers"]["Content-Type"] == "application/json"
    assert redact(value)["status"] == 200 and redact(value)["order_id"] == "wh_ord_1"


def test_the_formatter_redacts_messages_extras_and_tracebacks(json_logs, capfd) -> None:
    json_logs("INFO")
    log = logging.getLogger("wizesync.test")
    log.info(
        "token exchange: %s",
        "grant_type=refresh_token&refresh_token=rt-xyz-1",
        extra={"client_secret": "cs-xyz-2", "request": {"Authorization": "Bearer at-xyz-3"}},
    )
    try:
        raise RuntimeError("GHL said no to Bearer at-xyz-4")
    except RuntimeError:
        log.exception("call failed")
    text, records = captured(capfd)
    for secret in ("rt-xyz-1", "cs-xyz-2", "at-xyz-3", "at-xyz-4"):
        assert secret not in text, secret
    assert records[0]["client_secret"] == REDACTED


# --- a whole request at DEBUG ---------------------------------------------------------------------


async def test_debug_logs_of_a_whole_webhook_and_its_processing_hold_no_secret(
    json_logs, capfd, client_factory, database_url: str, is_postgres: bool
) -> None:
    """LOG_LEVEL=DEBUG: verbose, yet no configured secret, signature or token in the output."""
    access_token = "ghl-access-token-8f2a61"
    refresh_token = "ghl-refresh-token-4c9d07"
    webhook_secret = "whsec_ZGVidWctbG9nLXRlc3Qtc2VjcmV0LTk5MTM="
    secrets = {
        "admin_token": "admin-token-debug-5b1e",
        "wizehire_webhook_secret": webhook_secret,
        "wizehire_api_key": "wizehire-api-key-debug-33d0",
        "wizehire_client_secret": "wizehire-client-secret-debug-71aa",
        "ghl_client_secret": "ghl-client-secret-debug-0c4f",
        "ghl_private_token": "ghl-pit-debug-e6b2",
        "token_encryption_key": "fernet-key-debug-94af",
        "slack_webhook_url": "https://hooks.slack.com/services/T0/B0/slackdebug6620",
    }
    db_password = "db-password-debug-1f77"
    if is_postgres:  # trust auth: the password is sent, and ignored by the server
        database_url = (
            make_url(database_url).set(password=db_password).render_as_string(hide_password=False)
        )
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx: Any) -> None:
        # What an HTTP client logs at DEBUG around a token refresh and an API call.
        log = logging.getLogger("wizesync.ghl.client")
        log.debug(
            "POST /oauth/token",
            extra={
                "form": {
                    "client_id": "app",
                    "client_secret": secrets["ghl_client_secret"],
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                }
            },
        )
        log.debug(
            "token answer %s",
            json.dumps(
                {"access_token": access_token, "refresh_token": refresh_token, "expires_in": 86399}
            ),
        )
        log.debug(
            "GET https://services.leadconnectorhq.com/payments/orders",
            extra={"headers": {"Authorization": f"Bearer {access_token}", "Version": "2021-07-28"}},
        )
        log.debug(
            "PATCH wizehire",
            extra={"headers": {"Authorization": f"Bearer {secrets['wizehire_api_key']}"}},
        )

    json_logs("DEBUG")
    # A Private Integration Token names its location (not a secret, so not in `secrets`).
    settings = make_settings(
        database_url,
        log_level="DEBUG",
        ghl_location_id="LocDebug000000000001",
        ghl_api_url="https://ghl.invalid",  # never the real GHL
        **secrets,
    )
    client = await client_factory(settings, registry=registry)
    admin = {"Authorization": f"Bearer {secrets['admin_token']}"}

    body, headers = wizehire_request(order_event(), secret=webhook_secret)
    response = await client.post("/webhooks/wizehire", content=body, headers=headers)
    assert response.status_code == 202, response.text
    inbox_id = response.json()["id"]
    forged = dict(headers, **{"webhook-id": "msg_forged"})
    assert (
        await client.post("/webhooks/wizehire", content=body, headers=forged)
    ).status_code == 401
    await wait_for_status(client, inbox_id, "done", headers=admin)
    assert (await client.get(f"/admin/events/{inbox_id}", headers=admin)).status_code == 200
    assert (await client.get("/sync-status", headers=admin)).status_code == 200

    text, records = captured(capfd)
    assert any(r["msg"] == "PATCH wizehire" for r in records), "the DEBUG records are captured"
    signature = headers["webhook-signature"].split(",", 1)[1]
    leaks = [
        *secrets.values(),
        webhook_secret.removeprefix("whsec_"),
        signature,
        access_token,
        refresh_token,
        db_password,
    ]
    for secret in leaks:
        assert secret not in text, f"{secret!r} leaked into the logs"
    # And everything written is a JSON line (nothing bypasses the redacting formatter), about
    # the service rather than every cursor operation of the SQLite driver.
    assert not [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("{")
    ]
    assert not [r for r in records if r["logger"] == "aiosqlite"]


def test_uvicorn_lines_carry_no_ansi_colour_copy(json_logs, capfd) -> None:
    json_logs("INFO")
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]",
        42,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
    )
    _, [record] = captured(capfd)
    assert record["logger"] == "uvicorn.error" and record["msg"] == "Started server process [42]"
    assert "color_message" not in record
