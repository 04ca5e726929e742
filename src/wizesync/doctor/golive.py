"""`wizesync doctor --go-live`: everything `doctor` checks, plus what production needs.

Each check is `(ok, name, message)`; a failed one says the fix in words. `docs/GO-LIVE.md` walks
the same list in the same order. The checks that talk to the running service (`--url`) use only
what an outsider has: a Wizehire-signed webhook (an event type the service ignores, so nothing is
synced: a signature, storage and admin-API round trip) and, with `--test-order`, a sample order
through a sandbox the service is pointed at.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from wizesync.config import GHL_ED25519_PUBLIC_KEY, Settings

Check = tuple[bool, str, str]

PING_TYPE = "wizesync.golive.ping"  # a type no handler takes: stored as `ignored`, never synced
MIN_SECRET_CHARS = 32
MIN_DISTINCT_CHARS = 12
MIN_WEBHOOK_KEY_BYTES = 24  # Standard Webhooks secrets are 24 to 64 random bytes
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
TIMEOUT = httpx.Timeout(10.0)


async def run_go_live(
    settings: Settings,
    *,
    service_url: str,
    test_order: bool = False,
    http: httpx.AsyncClient | None = None,
) -> list[Check]:
    from wizesync.doctor.basic import run_checks

    results = await run_checks(settings)
    results += production_settings(settings)
    results += secret_strength(settings)
    results += https_urls(settings)
    results.append(database_engine(settings))
    results += webhook_keys(settings)
    results += await mapping_online(settings)
    client = http or httpx.AsyncClient(timeout=TIMEOUT)
    try:
        results += await service_round_trip(settings, service_url, client)
        if test_order:
            results.append(await sample_order(settings, service_url, client))
        results.append(await slack_reachable(settings, client))
    finally:
        if http is None:
            await client.aclose()
    return results


# --- configuration -------------------------------------------------------------------------------


def production_settings(settings: Settings) -> list[Check]:
    name = "production mode"
    out: list[Check] = []
    if settings.is_production:
        out.append(
            (
                True,
                name,
                "WIZESYNC_ENV=production: development secrets and the sandbox GHL key are refused",
            )
        )
    else:
        out.append(
            (
                False,
                name,
                f"WIZESYNC_ENV is {settings.wizesync_env}: set "
                "WIZESYNC_ENV=production (it refuses development secrets, "
                "sandbox URLs and the sandbox's GHL signing key)",
            )
        )
    for problem in settings.production_problems():
        out.append((False, "production guard", problem))
    return out


def _strength(value: str) -> str | None:
    """Why a shared secret is too weak to guess-proof, or None."""
    if len(value) < MIN_SECRET_CHARS:
        return f"{len(value)} characters; use at least {MIN_SECRET_CHARS}"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"only {len(set(value))} distinct characters: it is not random"
    return None


def secret_strength(settings: Settings) -> list[Check]:
    out: list[Check] = []
    for variable, secret in (
        ("ADMIN_TOKEN", settings.admin_token),
        ("METRICS_TOKEN", settings.metrics_token),
    ):
        if secret is None or not secret.get_secret_value():
            if variable == "ADMIN_TOKEN":
                out.append(
                    (
                        False,
                        "admin token",
                        f"ADMIN_TOKEN is not set: /sync-status and "
                        f"/admin/* are open; set one ({GENERATE})",
                    )
                )
            continue
        weak = _strength(secret.get_secret_value())
        out.append(
            (
                weak is None,
                f"{variable.lower().replace('_', ' ')} strength",
                f"{variable} is strong enough"
                if weak is None
                else f"{variable} is weak ({weak}); generate one: {GENERATE}",
            )
        )
    for n, webhook_secret in enumerate(settings.wizehire_webhook_secrets, 1):
        out.append(_webhook_secret(n, webhook_secret))
    if settings.ghl_client_id:
        out.append(_fernet_keys(settings))
    return out


def _webhook_secret(n: int, secret: str) -> Check:
    name = f"wizehire webhook secret {n} strength"
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        return (
            False,
            name,
            "WIZEHIRE_WEBHOOK_SECRET is not whsec_<base64>: use the secret "
            "Wizehire shows for the endpoint",
        )
    if len(key) < MIN_WEBHOOK_KEY_BYTES:
        return (
            False,
            name,
            (
                f"the key is {len(key)} bytes; Standard Webhooks secrets are "
                f"{MIN_WEBHOOK_KEY_BYTES} to 64 random bytes: ask Wizehire for a "
                "new endpoint secret"
            ),
        )
    return True, name, f"{len(key)}-byte key"


def _fernet_keys(settings: Settings) -> Check:
    from cryptography.fernet import Fernet

    name = "token encryption key"
    if settings.token_encryption_key is None:
        return (
            False,
            name,
            (
                "TOKEN_ENCRYPTION_KEY is required in OAuth mode; generate one: "
                "python3 -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ),
        )
    keys = [
        k.strip() for k in settings.token_encryption_key.get_secret_value().split(",") if k.strip()
    ]
    try:
        for key in keys:
            Fernet(key)
    except ValueError:
        return False, name, "TOKEN_ENCRYPTION_KEY holds a value that is not a Fernet key"
    return True, name, f"{len(keys)} Fernet key(s) usable"


def https_urls(settings: Settings) -> list[Check]:
    urls: list[tuple[str, str | None]] = [
        ("WIZEHIRE_API_URL", settings.wizehire_api_url),
        ("GHL_API_URL", settings.ghl_api_url),
        ("WIZEHIRE_TOKEN_URL", settings.wizehire_token_url),
        ("PUBLIC_URL", getattr(settings, "public_url", None)),
    ]
    if settings.ghl_client_id:
        urls += [
            ("GHL_REDIRECT_URI", settings.ghl_redirect_uri),
            ("GHL_AUTHORIZE_URL", settings.ghl_authorize_url),
        ]
    if settings.slack_webhook_url is not None:
        urls.append(("SLACK_WEBHOOK_URL", settings.slack_webhook_url.get_secret_value()))
    out: list[Check] = []
    for variable, url in urls:
        if not url:
            continue
        scheme = urlsplit(url).scheme
        shown = url if variable != "SLACK_WEBHOOK_URL" else "(set)"
        out.append(
            (
                scheme == "https",
                f"{variable} https",
                f"{variable} is https"
                if scheme == "https"
                else f"{variable} is {scheme or 'not a URL'} ({shown}): use its https URL; "
                "tokens and customer data cross it",
            )
        )
    return out


def database_engine(settings: Settings) -> Check:
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(settings.database_url).get_backend_name()
    except Exception:
        backend = "?"
    if backend == "postgresql":
        return True, "postgresql", "DATABASE_URL is PostgreSQL"
    return (
        False,
        "postgresql",
        (
            f"DATABASE_URL is {backend}: production needs PostgreSQL "
            "(several workers, row locks that skip, LISTEN/NOTIFY); set "
            "DATABASE_URL=postgresql+asyncpg://user:password@host/db and run "
            "`wizesync migrate`"
        ),
    )


def webhook_keys(settings: Settings) -> list[Check]:
    out: list[Check] = []
    if settings.ghl_public_key_pem.strip() == GHL_ED25519_PUBLIC_KEY.strip():
        out.append(
            (True, "ghl signing key", "GHL_WEBHOOK_PUBLIC_KEY is GHL's published Ed25519 key")
        )
    else:
        out.append(
            (
                False,
                "ghl signing key",
                "GHL_WEBHOOK_PUBLIC_KEY is not GHL's published "
                "Ed25519 key: GHL's webhooks would be refused "
                "(401); unset it to use the built-in key",
            )
        )
    if settings.ghl_rsa_public_key_pem:
        out.append(
            (
                True,
                "ghl legacy RSA key",
                "set: legacy X-WH-Signature webhooks are "
                "accepted too (GHL retired them on 2026-09-01; "
                "unset GHL_WEBHOOK_RSA_PUBLIC_KEY if unused)",
            )
        )
    count = len(settings.wizehire_webhook_secrets)
    if count > 1:
        out.append(
            (
                True,
                "wizehire secret rotation",
                f"{count} secrets accepted: remove the old one once Wizehire signs with the new",
            )
        )
    return out


async def mapping_online(settings: Settings) -> list[Check]:
    from wizesync.ghl.catalog import check_mapping, mapped_locations
    from wizesync.ghl.errors import GhlError
    from wizesync.ghl.factory import auth_mode
    from wizesync.mapping import MappingError, load_mapping
    from wizesync.ops.providers import ghl_problem

    name = "mapping"
    if not settings.mapping_file:
        return [
            (
                False,
                name,
                "MAPPING_FILE is not set: no SKU is mapped, so every order would "
                "go dead; write one with `wizesync mapping init --location <id>`",
            )
        ]
    try:
        mapping = load_mapping(settings.mapping_file, default_location=settings.ghl_location_id)
    except MappingError as exc:
        return [(False, name, str(exc))]
    if not mapped_locations(mapping):
        return [(False, name, "the mapping routes orders nowhere: set locations.default")]
    if not mapping.products:
        return [(False, name, "the mapping maps no SKU (products is empty)")]
    if auth_mode(settings) == "none":
        return [(False, name, "cannot check the mapping against GHL: GHL is not configured")]
    try:
        checks = await _with_ghl(settings, lambda client: check_mapping(client, mapping))
    except GhlError as exc:
        return [(False, name, f"GHL could not be asked: {ghl_problem(exc)}")]
    except Exception as exc:  # database or configuration: said, not raised
        return [(False, name, f"could not check against GHL: {type(exc).__name__}: {exc}")]
    bad = [c for c in checks if not c.ok]
    if not bad:
        return [
            (
                True,
                name,
                f"{settings.mapping_file}: all {len(checks)} mapped prices exist in "
                "GHL (`wizesync mapping check --online`)",
            )
        ]
    return [
        (
            False,
            f"mapping {c.sku}",
            f"in location {c.location_id}: {c.problem}; fix "
            f"{settings.mapping_file} (`wizesync ghl catalog`)",
        )
        for c in bad
    ]


async def _with_ghl(settings: Settings, fn: Any) -> Any:
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.ghl.factory import build_ghl_access
    from wizesync.ghl.http_client import build_http_client

    engine = create_engine(settings.database_url)
    http = build_http_client(settings)
    try:
        access = build_ghl_access(settings, create_sessionmaker(engine), http)
        try:
            return await fn(access.client)
        finally:
            await access.close()
    finally:
        await http.aclose()
        await engine.dispose()


# --- the running service -------------------------------------------------------------------------


def _admin_headers(settings: Settings) -> dict[str, str]:
    if settings.admin_token is None:
        return {}
    return {"authorization": f"Bearer {settings.admin_token.get_secret_value()}"}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("reason") or body)[:300]
    return str(body)[:300]


async def service_round_trip(
    settings: Settings, url: str, client: httpx.AsyncClient
) -> list[Check]:
    """/ready, then a signed Wizehire webhook the service stores as `ignored`, found again
    through the admin API: the secret, the inbox and ADMIN_TOKEN agree with the service's."""
    from wizesync.signing import wizehire_headers

    base = url.rstrip("/")
    try:
        ready = await client.get(f"{base}/ready")
    except httpx.HTTPError as exc:
        return [
            (
                False,
                "service",
                f"cannot reach the service at {base} ({type(exc).__name__}):"
                " start it, or pass --url with its address",
            )
        ]
    out: list[Check] = [
        (True, "service ready", f"{base}/ready: database, migrations and a worker heartbeat")
        if ready.status_code == 200
        else (False, "service ready", f"{base}/ready answers {ready.status_code}: {_detail(ready)}")
    ]
    if not settings.wizehire_webhook_secrets:
        return [*out, (False, "webhook round trip", "no WIZEHIRE_WEBHOOK_SECRET to sign with")]
    event_id = f"msg_golive_{int(time.time() * 1000)}"
    body = json.dumps(
        {
            "type": PING_TYPE,
            "timestamp": _now(),
            "data": {"note": "wizesync doctor --go-live: ignored by design"},
        }
    ).encode()
    headers = wizehire_headers(settings.wizehire_webhook_secrets[0], body, event_id=event_id)
    try:
        answer = await client.post(f"{base}/webhooks/wizehire", content=body, headers=headers)
    except httpx.HTTPError as exc:
        return [*out, (False, "webhook round trip", f"POST /webhooks/wizehire failed: {exc}")]
    if answer.status_code == 401:
        return [
            *out,
            (
                False,
                "webhook round trip",
                "the service refused the signature: its WIZEHIRE_WEBHOOK_SECRET is not "
                "the one configured here (use the same secret, the one Wizehire signs "
                "with)",
            ),
        ]
    if answer.status_code not in (200, 202):
        return [
            *out,
            (
                False,
                "webhook round trip",
                f"POST /webhooks/wizehire answered {answer.status_code}: {_detail(answer)}",
            ),
        ]
    listed = await client.get(
        f"{base}/admin/events",
        headers=_admin_headers(settings),
        params={"source": "wizehire", "status": "ignored", "limit": 50},
    )
    if listed.status_code in (401, 403):
        return [
            *out,
            (
                False,
                "webhook round trip",
                f"the webhook was accepted ({answer.status_code}) but the admin API "
                "refused ADMIN_TOKEN: it is not the service's",
            ),
        ]
    if listed.status_code != 200:
        return [
            *out,
            (
                False,
                "webhook round trip",
                f"GET /admin/events answered {listed.status_code}: {_detail(listed)}",
            ),
        ]
    found = [e for e in listed.json().get("data", []) if e.get("event_id") == event_id]
    if not found:
        return [
            *out,
            (
                False,
                "webhook round trip",
                f"the webhook was answered {answer.status_code} but the admin API does "
                "not list it: is --url the service that owns this database?",
            ),
        ]
    return [
        *out,
        (
            True,
            "webhook round trip",
            f"a signed Wizehire webhook was verified, stored (inbox event "
            f"{found[0]['id']}, ignored by design) and read back with ADMIN_TOKEN",
        ),
    ]


async def sample_order(
    settings: Settings, url: str, client: httpx.AsyncClient, wait_seconds: float = 60.0
) -> Check:
    """A sample Wizehire order through the service and a sandbox it talks to, to `done`."""
    from wizesync.signing import wizehire_headers
    from wizesync.trigger import TriggerError, build

    name = "test order"
    if settings.is_production:
        return (
            False,
            name,
            (
                "--test-order runs against a sandbox only: run it on a staging "
                "copy of this configuration pointed at `wizesync sandbox`"
            ),
        )
    try:
        with httpx.Client(timeout=TIMEOUT) as sync_http:
            built = await asyncio.to_thread(
                build,
                "order.created",
                settings=settings,
                service_url=url,
                order_id=None,
                http=sync_http,
            )
    except TriggerError as exc:
        return False, name, str(exc)
    body = json.dumps(built.body).encode()
    headers = wizehire_headers(settings.wizehire_webhook_secrets[0], body)
    answer = await client.post(
        f"{url.rstrip('/')}/webhooks/wizehire", content=body, headers=headers
    )
    if answer.status_code != 202:
        return False, name, f"the service answered {answer.status_code}: {_detail(answer)}"
    event_id = answer.json()["id"]
    deadline = time.monotonic() + wait_seconds
    status = "queued"
    while time.monotonic() < deadline:
        got = await client.get(
            f"{url.rstrip('/')}/admin/events/{event_id}", headers=_admin_headers(settings)
        )
        status = got.json().get("status", "?") if got.status_code == 200 else "?"
        if status in ("done", "dead"):
            break
        await asyncio.sleep(0.3)
    order_id = built.body["data"]["order"]["id"]
    if status == "done":
        return True, name, f"sample order {order_id} synced through the sandbox (event {event_id})"
    return (
        False,
        name,
        (f"sample order {order_id} ended {status}: `wizesync events show {event_id}` says why"),
    )


async def slack_reachable(settings: Settings, client: httpx.AsyncClient) -> Check:
    """A message-less POST: Slack answers 400 (`no_text`/`invalid_payload`) to a live webhook
    and posts nothing; 403/404/410 mean the URL is revoked, wrong or its channel archived."""
    name = "slack"
    if settings.slack_webhook_url is None:
        return (
            False,
            name,
            (
                "SLACK_WEBHOOK_URL is not set: dead letters and installs needing "
                "a human go unnoticed; add an incoming webhook "
                "(https://api.slack.com/messaging/webhooks)"
            ),
        )
    try:
        answer = await client.post(settings.slack_webhook_url.get_secret_value(), json={})
    except httpx.HTTPError as exc:
        return False, name, f"Slack cannot be reached ({type(exc).__name__}): check egress"
    said = answer.text.strip()[:80]
    if answer.status_code == 400:
        return (
            True,
            name,
            "the incoming webhook answers (probe without a message: nothing was posted)",
        )
    if answer.status_code in (403, 404, 410):
        return (
            False,
            name,
            (
                f"Slack refuses the webhook ({answer.status_code} {said}): make a "
                "new incoming webhook and set SLACK_WEBHOOK_URL"
            ),
        )
    return False, name, f"Slack answered {answer.status_code} {said}"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
