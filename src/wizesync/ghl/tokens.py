"""Access tokens per location: stored encrypted, refreshed single-flight across processes.

GHL's refresh tokens are single use. Two processes refreshing the same one at once means one of
them gets `invalid_grant` and the install is broken until a human re-authorises. So a refresh
happens only under the installation row's lock (PostgreSQL `FOR UPDATE`; on SQLite the
transaction's BEGIN IMMEDIATE), the row is re-read after the lock is taken (someone else may
have refreshed while we waited: then we use their token), and the new pair is committed before
anyone uses it. Inside a process, an asyncio lock per location keeps concurrent calls from
queueing on the database lock one by one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import ConfigError, Settings
from wizesync.db import install_repo
from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlInstallation, UserType
from wizesync.db.install_repo import StoredTokens
from wizesync.ghl.crypto import TokenCipher, TokenDecryptError
from wizesync.ghl.errors import GhlError, GhlLocationInactive, GhlNeedsReauth, GhlNotInstalled
from wizesync.ghl.installs import stored_tokens
from wizesync.ghl.limits import StaticTokenProvider, TokenProvider
from wizesync.ghl.oauth import GhlOAuth, TokenGrant

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before GHL's expiry
INACTIVE_FIRST_DELAY = 300.0  # "Location is not active": first pause, doubling per strike
INACTIVE_MAX_DELAY = 3600.0


@dataclass(frozen=True, slots=True)
class _Fresh:
    token: str
    expires_at: datetime


class DbTokenProvider:
    """`TokenProvider` for OAuth installs, over the `ghl_installations` table."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        oauth: GhlOAuth,
        crypto: TokenCipher,
        settings: Settings,
        *,
        refresh_margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._oauth = oauth
        self._cipher = crypto
        self._settings = settings
        self._margin = refresh_margin
        self._cache: dict[str, _Fresh] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def access_token(self, location_id: str) -> str:
        cached = self._usable(location_id)
        if cached is not None:
            return cached
        async with self._lock(location_id):
            cached = self._usable(location_id)  # a task of ours may just have refreshed
            if cached is not None:
                return cached
            return await self._obtain(location_id, rejected=None)

    async def token_rejected(self, location_id: str, token: str) -> None:
        """GHL said 401 to `token`: replace it, unless someone already did."""
        async with self._lock(location_id):
            cached = self._cache.get(location_id)
            if cached is not None and cached.token != token:
                return
            self._cache.pop(location_id, None)
            await self._obtain(location_id, rejected=token)

    def forget(self, location_id: str) -> None:
        self._cache.pop(location_id, None)

    # --- internals ----------------------------------------------------------------------------

    def _lock(self, location_id: str) -> asyncio.Lock:
        return self._locks.setdefault(location_id, asyncio.Lock())

    def _usable(self, location_id: str) -> str | None:
        cached = self._cache.get(location_id)
        if cached is not None and cached.expires_at - self._margin > utcnow():
            return cached.token
        return None

    async def _obtain(self, location_id: str, rejected: str | None) -> str:
        # Shielded: a caller cancelled mid-refresh must not lose the rotated pair GHL already
        # issued; the refresh runs to its commit in the background.
        task = asyncio.ensure_future(self._locked_obtain(location_id, rejected))
        task.add_done_callback(_consume_exception)
        fresh = await asyncio.shield(task)
        return fresh.token

    async def _locked_obtain(self, location_id: str, rejected: str | None) -> _Fresh:
        async with self._sessionmaker.begin() as session:
            row = await install_repo.lock_installation(session, location_id)
            if row is None:
                raise GhlNotInstalled(
                    f"this service has no GHL install for location {location_id}: GHL location "
                    f"{location_id} is not installed; install the app there "
                    "(GET /oauth/ghl/install)",
                    location_id=location_id,
                )
            outcome = await self._under_lock(session, row, rejected)
        # Committed: failures recorded (needs_reauth, inactive) stay recorded, and a new pair is
        # stored before anyone uses it.
        if isinstance(outcome, Exception):
            raise outcome
        self._cache[location_id] = outcome
        return outcome

    async def _under_lock(
        self, session: AsyncSession, row: GhlInstallation, rejected: str | None
    ) -> _Fresh | GhlError:
        location_id = row.location_id or ""
        self._check_usable(row)
        current = self._decrypt(row.access_token_enc)
        now = utcnow()
        if (
            current is not None
            and row.expires_at is not None
            and row.expires_at - self._margin > now
            and current != rejected
        ):
            await self._rotate_keys(session, row)
            return _Fresh(current, row.expires_at)

        try:
            grant = await self._new_grant(session, row)
        except _Undecryptable:
            raise
        except GhlNeedsReauth as exc:
            await install_repo.mark_needs_reauth(session, [row.id], exc.message)
            log.error(
                "GHL installation needs re-authorisation",
                extra={"location_id": location_id, "reason": exc.message},
            )
            return exc
        except GhlLocationInactive as exc:
            return await self._pause(session, row, exc)

        keep_refresh = row.refresh_token_enc if grant.refresh_token is None else None
        tokens = stored_tokens(self._cipher, grant)
        if keep_refresh is not None and row.refresh_token_enc is not None:
            tokens = StoredTokens(tokens.access_enc, keep_refresh, tokens.expires_at, tokens.scopes)
        if tokens.scopes is None:
            tokens = StoredTokens(
                tokens.access_enc, tokens.refresh_enc, tokens.expires_at, row.scopes
            )
        await install_repo.save_tokens(session, row.id, tokens)
        log.info(
            "GHL access token renewed",
            extra={
                "location_id": location_id,
                "expires_at": tokens.expires_at,
                "forced": rejected is not None,
            },
        )
        return _Fresh(grant.access_token.get_secret_value(), tokens.expires_at)

    def _check_usable(self, row: GhlInstallation) -> None:
        """Raise, without calling GHL, when the row says calling cannot help (no crash loop)."""
        name = row.location_id or f"agency {row.company_id}"
        if row.needs_reauth:
            raise _needs_reauth(
                f"GHL install of {name} needs re-authorisation: "
                f"{row.reauth_reason or 'refresh failed'}"
            )
        if row.uninstalled_at is not None and row.access_token_enc is None:
            raise _needs_reauth(f"the app was uninstalled from {name}; install it again")
        if row.inactive_until is not None and row.inactive_until > utcnow():
            delay = (row.inactive_until - utcnow()).total_seconds()
            raise GhlLocationInactive(
                f"GHL says {name} is not active; retrying after a pause", status=400, delay=delay
            )

    async def _new_grant(self, session: AsyncSession, row: GhlInstallation) -> TokenGrant:
        if row.refresh_token_enc is not None:
            refresh = self._decrypt(row.refresh_token_enc)
            assert refresh is not None
            return await self._oauth.refresh(refresh, row.user_type)
        if row.company_id is not None and row.location_id is not None:
            agency_token = await self._agency_token(session, row.company_id, force=False)
            try:
                return await self._oauth.location_token(
                    agency_token, row.company_id, row.location_id
                )
            except GhlError as exc:
                if exc.status != 401 or isinstance(exc, GhlNeedsReauth | GhlLocationInactive):
                    raise
            # The agency token was refused before its expiry (revoked): renew it once.
            agency_token = await self._agency_token(session, row.company_id, force=True)
            return await self._oauth.location_token(agency_token, row.company_id, row.location_id)
        raise _needs_reauth(
            f"no refresh token stored for GHL location {row.location_id}: install the app again"
        )

    async def _agency_token(self, session: AsyncSession, company_id: str, *, force: bool) -> str:
        """The agency's access token, renewed under the agency row's lock when needed. Same
        transaction as the location's: on SQLite a second one would wait on our own lock."""
        agency = await install_repo.lock_agency(session, company_id)
        if agency is None:
            raise _needs_reauth(
                f"no agency install stored for company {company_id}: "
                "install the app at agency level again"
            )
        self._check_usable(agency)
        current = self._decrypt(agency.access_token_enc)
        if (
            not force
            and current is not None
            and agency.expires_at is not None
            and agency.expires_at - self._margin > utcnow()
        ):
            return current
        refresh = self._decrypt(agency.refresh_token_enc)
        if refresh is None:
            raise _needs_reauth(f"no refresh token stored for agency {company_id}")
        try:
            grant = await self._oauth.refresh(refresh, UserType.COMPANY)
        except GhlNeedsReauth as exc:
            await install_repo.mark_needs_reauth(session, [agency.id], exc.message)
            raise
        tokens = stored_tokens(self._cipher, grant)
        if tokens.refresh_enc is None:
            tokens = StoredTokens(
                tokens.access_enc,
                agency.refresh_token_enc,
                tokens.expires_at,
                tokens.scopes or agency.scopes,
            )
        await install_repo.save_tokens(session, agency.id, tokens)
        log.info("GHL agency token renewed", extra={"company_id": company_id})
        return grant.access_token.get_secret_value()

    async def _pause(
        self, session: AsyncSession, row: GhlInstallation, exc: GhlLocationInactive
    ) -> GhlLocationInactive:
        strikes = row.inactive_strikes or 0
        delay = min(INACTIVE_FIRST_DELAY * 2**strikes, INACTIVE_MAX_DELAY)
        await install_repo.mark_inactive(
            session, row.id, until=utcnow() + timedelta(seconds=delay), strikes=strikes + 1
        )
        log.warning(
            "GHL location is not active; pausing its token calls",
            extra={"location_id": row.location_id, "delay_seconds": delay},
        )
        return GhlLocationInactive(
            exc.message,
            status=exc.status,
            messages=exc.messages,
            trace_id=exc.trace_id,
            delay=delay,
        )

    async def _rotate_keys(self, session: AsyncSession, row: GhlInstallation) -> None:
        """Holding the lock anyway: move a pair still under an older key to the newest."""
        encs = [e for e in (row.access_token_enc, row.refresh_token_enc) if e is not None]
        if all(self._cipher.is_current(e) for e in encs):
            return
        access = self._decrypt(row.access_token_enc)
        refresh = self._decrypt(row.refresh_token_enc)
        assert access is not None and row.expires_at is not None
        await install_repo.save_tokens(
            session,
            row.id,
            StoredTokens(
                self._cipher.encrypt(access),
                self._cipher.encrypt(refresh) if refresh is not None else None,
                row.expires_at,
                row.scopes,
            ),
        )

    def _decrypt(self, ciphertext: str | None) -> str | None:
        if ciphertext is None:
            return None
        try:
            return self._cipher.decrypt(ciphertext)
        except TokenDecryptError as exc:
            raise _Undecryptable(str(exc)) from None


class _Undecryptable(GhlNeedsReauth):
    """Not marked in the row: putting the removed key back fixes it without a re-install."""


def _needs_reauth(message: str) -> GhlNeedsReauth:
    return GhlNeedsReauth(message)


def _consume_exception(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a shielded task whose caller left logs nothing spurious


def build_token_provider(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> TokenProvider:
    """Private Integration Token mode when GHL_PRIVATE_TOKEN is set, else OAuth installs."""
    if settings.ghl_private_token is not None:
        if not settings.ghl_location_id:
            raise ConfigError("GHL_PRIVATE_TOKEN needs GHL_LOCATION_ID (the token's location)")
        return StaticTokenProvider(
            settings.ghl_private_token.get_secret_value(), settings.ghl_location_id
        )
    if settings.is_production and not settings.ghl_client_id:
        raise ConfigError(
            "GHL is not configured: set GHL_CLIENT_ID, GHL_CLIENT_SECRET and "
            "GHL_REDIRECT_URI (OAuth app), or GHL_PRIVATE_TOKEN and "
            "GHL_LOCATION_ID (Private Integration Token)"
        )
    return DbTokenProvider(
        sessionmaker, GhlOAuth(http, settings), TokenCipher.from_settings(settings), settings
    )
