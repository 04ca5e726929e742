"""What the flows talk to, built once per process (lifespan or `wizesync worker`).

Handlers reach these through `ctx.services`, typed by the `Services` protocol of
`wizesync.inbox.context` (the queue carries them without knowing this class); tests build their
own `Services` around respx or the sandbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import ConfigError, Settings
from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import RateLimiter, TokenProvider
from wizesync.inbox.context import PermanentFailure
from wizesync.mapping import Mapping, load_mapping
from wizesync.notify.slack import SlackNotifier
from wizesync.wizehire.client import WizehireClient

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    ghl: GhlClient
    tokens: TokenProvider
    limiter: RateLimiter
    mapping: Mapping
    slack: SlackNotifier
    wizehire_client: WizehireClient | None
    wizehire_problem: str | None = None
    # The shared outbound client, for the refund gateways (their own base URLs and timeouts).
    http: httpx.AsyncClient | None = None

    @property
    def wizehire(self) -> WizehireClient:
        """The Wizehire client; a replayable failure, in words, when it is not configured."""
        if self.wizehire_client is None:
            raise PermanentFailure(f"the Wizehire API is not configured: {self.wizehire_problem}")
        return self.wizehire_client


def build_services(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> Services:
    """Raises MappingError / ConfigError at start-up, so a bad mapping never reaches a flow."""
    from wizesync.ghl.ratelimit import DbRateLimiter
    from wizesync.ghl.tokens import build_token_provider
    from wizesync.wizehire.client import build_wizehire_client

    mapping = load_mapping(settings.mapping_file, default_location=settings.ghl_location_id)
    from wizesync.flows.refunds.validation import check_refunds_mapping

    check_refunds_mapping(mapping, settings.mapping_file)
    tokens = build_token_provider(settings, sessionmaker, http)
    limiter = DbRateLimiter(sessionmaker, settings)
    ghl = GhlClient(
        http,
        base_url=settings.ghl_api_url,
        version=settings.ghl_api_version,
        tokens=tokens,
        limiter=limiter,
    )
    wizehire: WizehireClient | None = None
    problem: str | None = None
    try:
        wizehire = build_wizehire_client(settings, http)
    except ConfigError as exc:
        if settings.is_production:
            raise
        problem = str(exc)
        log.warning(
            "Wizehire API client not configured; flows that write to Wizehire will fail replayably",
            extra={"reason": problem},
        )
    slack_url = (
        settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
    )
    return Services(
        settings=settings,
        ghl=ghl,
        tokens=tokens,
        limiter=limiter,
        mapping=mapping,
        slack=SlackNotifier(http, slack_url),
        wizehire_client=wizehire,
        wizehire_problem=problem,
        http=http,
    )
