"""How a failed GHL or Wizehire call ends an attempt: wait and retry, or go dead for a human.

- transient (429, 5xx, timeouts, paused location): `RetryLater` with the client's delay;
- GHL install needs re-authorisation: `RetryLater` with a long delay, so events wait for the
  human instead of dying (a replay would be needed otherwise);
- no install at all for the location (a webhook from a location this service does not serve, or
  an order routed to one): `PermanentFailure` at once, in words; waiting cannot fix it, and the
  event stays replayable once the app is installed there or the mapping is fixed;
- anything else typed (422, 404, scope, Wizehire 4xx): `PermanentFailure`, in words.
Untyped exceptions are left alone: the worker retries them as bugs with backoff.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wizesync.ghl.errors import GhlError, GhlNeedsReauth, GhlNotInstalled
from wizesync.inbox.context import PermanentFailure, RetryLater
from wizesync.wizehire.errors import WizehireError

REAUTH_DELAY_SECONDS = 1800.0


@contextmanager
def calling(what: str) -> Iterator[None]:
    """`with calling("GHL create invoice for wh_ord_1"):` around one outbound step."""
    try:
        yield
    except GhlNotInstalled as exc:
        raise PermanentFailure(
            f"{what}: {exc}. Not retried: waiting cannot change that. If the location should be "
            f"served, install the app for {exc.location_id} (or fix the mapping) and replay "
            "the event"
        ) from exc
    except GhlNeedsReauth as exc:
        raise RetryLater(
            f"{what}: the GHL install needs re-authorisation ({exc})",
            REAUTH_DELAY_SECONDS,
            alert="A GHL installation needs re-authorisation: events for it wait. "
            "Re-install through /oauth/ghl/install.",
        ) from exc
    except (GhlError, WizehireError) as exc:
        if exc.transient:
            delay = getattr(exc, "delay", None) or getattr(exc, "retry_after", None)
            raise RetryLater(f"{what}: {exc}", delay) from exc
        raise PermanentFailure(f"{what}: {exc}") from exc
