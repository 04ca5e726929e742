"""Installing the app: one-time install states, and storing what the OAuth callback got.

An agency (Company) install stores the agency's own pair FIRST (its refresh token is the only
way back in), then mints a token for each approved location; a location whose minting fails is
stored without a token and minted on first use.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import install_repo, oauth_state_repo
from wizesync.db.base import utcnow
from wizesync.db.ghl_models import UserType
from wizesync.db.install_repo import StoredTokens
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.errors import GhlError
from wizesync.ghl.oauth import GhlOAuth, TokenGrant

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)


def hash_state(state: str) -> str:
    """States are stored hashed: a database reader cannot complete someone's install."""
    return hashlib.sha256(state.encode()).hexdigest()


# States `/oauth/ghl/install` made carry this prefix: the callback then wants the browser cookie.
BROWSER_BOUND_PREFIX = "b."


def is_browser_bound(state: str) -> bool:
    return state.startswith(BROWSER_BOUND_PREFIX)


async def new_state(
    session: AsyncSession, user_type: str = UserType.LOCATION, *, browser_bound: bool = False
) -> str:
    state = (BROWSER_BOUND_PREFIX if browser_bound else "") + secrets.token_urlsafe(32)
    await oauth_state_repo.create_state(
        session, state_hash=hash_state(state), user_type=user_type, ttl=STATE_TTL
    )
    return state


async def use_state(session: AsyncSession, state: str) -> str | None:
    """The state's user type if it is known, unexpired and unused (and now it is used)."""
    return await oauth_state_repo.consume_state(session, hash_state(state))


def stored_tokens(cipher: TokenCipher, grant: TokenGrant) -> StoredTokens:
    refresh = grant.refresh_token.get_secret_value() if grant.refresh_token else None
    return StoredTokens(
        access_enc=cipher.encrypt(grant.access_token.get_secret_value()),
        refresh_enc=cipher.encrypt(refresh) if refresh else None,
        expires_at=utcnow() + timedelta(seconds=max(0.0, grant.expires_in)),
        scopes=grant.scope,
    )


@dataclass
class InstallResult:
    user_type: str
    company_id: str | None = None
    locations: list[str] = field(default_factory=list)
    # Locations stored without a token: minting failed now, retried on first use.
    pending: dict[str, str] = field(default_factory=dict)


async def complete_install(
    sessionmaker: async_sessionmaker[AsyncSession],
    oauth: GhlOAuth,
    cipher: TokenCipher,
    grant: TokenGrant,
) -> InstallResult:
    """Store the grant of an OAuth callback: a location's pair, or an agency's and its locations'.
    Each store commits on its own, so what succeeded stays stored if a later step fails."""
    is_agency = (grant.user_type or "").lower() == "company" or (
        grant.location_id is None and grant.company_id is not None
    )
    if not is_agency:
        if not grant.location_id:
            raise GhlError("GHL's token answer names no location")
        async with sessionmaker.begin() as session:
            await install_repo.upsert_location(
                session,
                location_id=grant.location_id,
                company_id=grant.company_id,
                tokens=stored_tokens(cipher, grant),
                user_id=grant.user_id,
            )
        log.info("GHL location installed", extra={"location_id": grant.location_id})
        return InstallResult(UserType.LOCATION, grant.company_id, [grant.location_id])

    company_id = grant.company_id
    if not company_id:
        raise GhlError("GHL's agency token answer names no company")
    async with sessionmaker.begin() as session:
        await install_repo.upsert_agency(
            session,
            company_id=company_id,
            tokens=stored_tokens(cipher, grant),
            user_id=grant.user_id,
        )
    result = InstallResult(UserType.COMPANY, company_id)
    company_token = grant.access_token.get_secret_value()
    for location_id in dict.fromkeys(grant.approved_locations):  # unique, in order
        tokens: StoredTokens | None = None
        try:
            minted = await oauth.location_token(company_token, company_id, location_id)
            tokens = stored_tokens(cipher, minted)
        except GhlError as exc:
            result.pending[location_id] = exc.message
            log.warning(
                "GHL location token not minted at install; will retry on first use",
                extra={"location_id": location_id, "company_id": company_id, "error": exc.message},
            )
        async with sessionmaker.begin() as session:
            # Agency-minted: the location keeps no refresh token of its own.
            if tokens is not None:
                tokens = StoredTokens(tokens.access_enc, None, tokens.expires_at, tokens.scopes)
            await install_repo.upsert_location(
                session,
                location_id=location_id,
                company_id=company_id,
                tokens=tokens,
                user_id=grant.user_id,
            )
        result.locations.append(location_id)
    log.info(
        "GHL agency installed", extra={"company_id": company_id, "locations": result.locations}
    )
    return result
