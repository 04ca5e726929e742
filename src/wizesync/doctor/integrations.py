"""`wizesync doctor`'s checks of the two outside systems: GHL tokens and scopes, Wizehire's API.

GHL, OAuth mode: every installation as the database holds it (needs re-authorisation, paused,
token expiry and whether the stored tokens still decrypt, scopes granted against the ones the
service asks for). Nothing is refreshed: looking must not spend a single-use refresh token.
GHL, Private Integration Token mode: one cheap authenticated call (the white-label provider
list), so a wrong token or a missing scope shows here and not in the first sync.
Wizehire: one `GET /v1/orders?limit=1` with the configured credentials.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from wizesync.config import ConfigError, Settings

Check = tuple[bool, str, str]
TIMEOUT = httpx.Timeout(10.0)


async def ghl_checks(settings: Settings, database_ok: bool) -> list[Check]:
    from wizesync.devmode import MOUNT_PATH, plan
    from wizesync.ghl.factory import auth_mode

    mode = auth_mode(settings)
    if mode == "pit":
        return [await _pit_call(settings)]
    if mode == "oauth":
        return await _installations(settings, database_ok)
    if plan(settings) is not None:
        return [
            (
                True,
                "ghl",
                "no GHL credentials: in development `wizesync dev` (`make run`) runs the "
                f"service against the built-in sandbox (served at {MOUNT_PATH}); set "
                "GHL_PRIVATE_TOKEN and GHL_LOCATION_ID, or GHL_CLIENT_ID, to use "
                "a real GHL",
            )
        ]
    return [
        (
            False,
            "ghl",
            "GHL is not configured: set GHL_PRIVATE_TOKEN and GHL_LOCATION_ID "
            "(Private Integration Token), or GHL_CLIENT_ID, GHL_CLIENT_SECRET and "
            "GHL_REDIRECT_URI (OAuth app)",
        )
    ]


async def _pit_call(settings: Settings) -> Check:
    from wizesync.ghl.client import GhlClient
    from wizesync.ghl.errors import GhlError
    from wizesync.ghl.limits import InMemoryRateLimiter, StaticTokenProvider
    from wizesync.ops.providers import ghl_problem

    name = "ghl token"
    location = settings.ghl_location_id
    if not location:
        return False, name, "GHL_PRIVATE_TOKEN needs GHL_LOCATION_ID (the token's location)"
    assert settings.ghl_private_token is not None
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        # One request: the shared budget is not worth a database round trip here.
        client = GhlClient(
            http,
            base_url=settings.ghl_api_url,
            version=settings.ghl_api_version,
            tokens=StaticTokenProvider(settings.ghl_private_token, location),
            limiter=InMemoryRateLimiter(),
            max_attempts=1,
            timeout=TIMEOUT,
        )
        try:
            page = await client.list_whitelabel_providers(location)
        except GhlError as exc:
            return (
                False,
                name,
                (
                    f"Private Integration Token for location {location} at "
                    f"{settings.ghl_api_url}: {ghl_problem(exc)}"
                ),
            )
        except ValueError as exc:
            return False, name, f"GHL_LOCATION_ID: {exc}"
    return (
        True,
        name,
        (
            f"the Private Integration Token works for location {location} "
            f"({len(page.items)} white-label provider(s))"
        ),
    )


async def _installations(settings: Settings, database_ok: bool) -> list[Check]:
    from wizesync.db import install_repo
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.ghl.crypto import TokenCipher

    try:
        cipher = TokenCipher.from_settings(settings)
    except ConfigError as exc:
        return [(False, "ghl token key", f"TOKEN_ENCRYPTION_KEY: {exc}")]
    if not database_ok:
        return [(False, "ghl installations", "not checked: the database is not usable (above)")]
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await install_repo.list_installations(session)
    except Exception as exc:
        return [(False, "ghl installations", f"cannot read them: {type(exc).__name__}: {exc}")]
    finally:
        await engine.dispose()
    if not rows:
        return [
            (
                False,
                "ghl installations",
                "no GHL location is installed yet: open "
                "/oauth/ghl/install on the service or run "
                "`wizesync ghl install-url`",
            )
        ]
    return [_installation(row, cipher) for row in rows]


def _installation(row: Any, cipher: Any) -> Check:
    from wizesync.db.base import utcnow
    from wizesync.ghl.crypto import TokenDecryptError
    from wizesync.ghl.oauth import SCOPES

    agency = row.location_id is None
    name = f"ghl agency {row.company_id}" if agency else f"ghl location {row.location_id}"
    if row.uninstalled_at is not None:
        return (
            True,
            name,
            (
                f"uninstalled on {row.uninstalled_at:%Y-%m-%d %H:%M} UTC: nothing is "
                "synced for it (install again to resume)"
            ),
        )
    if row.needs_reauth:
        return (
            False,
            name,
            (
                f"needs re-authorisation: {row.reauth_reason or 'refresh failed'}; "
                "install the app again (`wizesync ghl install-url`)"
            ),
        )
    now = utcnow()
    if row.inactive_until is not None and row.inactive_until > now:
        return (
            False,
            name,
            (
                "GHL says the location is not active (a paused sub-account); "
                f"token calls resume after {row.inactive_until:%Y-%m-%d %H:%M} UTC"
            ),
        )
    try:
        for ciphertext in (row.access_token_enc, row.refresh_token_enc):
            if ciphertext is not None:
                cipher.decrypt(ciphertext)
    except TokenDecryptError:
        return (
            False,
            name,
            (
                "its stored tokens do not decrypt with TOKEN_ENCRYPTION_KEY: put "
                "back the key they were stored with (after the new one)"
            ),
        )
    if row.refresh_token_enc is None and (agency or row.company_id is None):
        return False, name, "no refresh token is stored: install the app again"
    notes = [_expiry(row, now)]
    if not agency:
        granted = set((row.scopes or "").split())
        missing = [s for s in SCOPES if s not in granted]
        if row.scopes is None:
            notes.append("GHL did not say which scopes were granted")
        elif missing:
            return (
                False,
                name,
                (
                    f"missing scopes {', '.join(missing)}: add them to the app in "
                    "the GHL marketplace and install it again"
                ),
            )
        else:
            notes.append(f"all {len(SCOPES)} scopes granted")
    return True, name, "; ".join(notes)


def _expiry(row: Any, now: Any) -> str:
    if row.access_token_enc is None or row.expires_at is None:
        return "no access token yet: one is minted by the agency install on first use"
    left = row.expires_at - now
    if left <= timedelta(0):
        return (
            f"access token expired at {row.expires_at:%Y-%m-%d %H:%M} UTC: it is renewed "
            "on the next call"
        )
    hours = left.total_seconds() / 3600
    return f"access token valid for {hours:.1f} h more (renewed ahead of expiry)"


# --- Wizehire ------------------------------------------------------------------------------------


async def wizehire_check(settings: Settings) -> Check:
    from wizesync.db.base import utcnow
    from wizesync.devmode import MOUNT_PATH, plan
    from wizesync.wizehire.client import build_wizehire_client
    from wizesync.wizehire.errors import WizehireError

    name = "wizehire api"
    dev = plan(settings)
    if dev is not None and dev.wizehire:
        return (
            True,
            name,
            (
                "not configured: in development `wizesync dev` (`make run`) uses the "
                f"built-in sandbox's fake Wizehire ({MOUNT_PATH}/wizehire)"
            ),
        )
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        try:
            client = build_wizehire_client(settings, http, max_attempts=1, timeout=TIMEOUT)
        except ConfigError as exc:
            return False, name, str(exc)
        url = settings.wizehire_api_url
        try:
            await client.list_orders(utcnow() - timedelta(days=1), limit=1)
        except WizehireError as exc:
            return False, name, f"{url}: {wizehire_problem(exc)}"
    return True, name, f"{url} answers GET /v1/orders ({client.auth_mode} auth)"


def wizehire_problem(exc: Any) -> str:
    from wizesync.wizehire import errors as e

    if isinstance(exc, e.WizehireAuthError):
        return (
            f"Wizehire refused the credentials ({exc.status or 'token endpoint'}): "
            f"{exc.detail}; check WIZEHIRE_API_KEY or the client credentials"
        )
    if isinstance(exc, e.WizehireUnavailable):
        from wizesync.connection_problems import connection_problem

        return f"cannot reach it: {connection_problem(exc)}"
    if isinstance(exc, e.WizehireNotFound):
        return "GET /v1/orders is not there (404): is WIZEHIRE_API_URL the API's base URL?"
    if isinstance(exc, e.WizehireServerError):
        return f"Wizehire failed with {exc.status}: {exc.detail}"
    if isinstance(exc, e.WizehireRateLimited):
        return f"Wizehire is rate limiting us (429); try again in {exc.delay:.0f} s"
    if isinstance(exc, e.WizehireBadResponse):
        return f"the answer is not the contract's orders page: {exc.detail}"
    return f"Wizehire answered {exc.status}: {exc.detail}"
