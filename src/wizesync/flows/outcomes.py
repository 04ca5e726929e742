"""How a failed GHL or Wizehire call ends an attempt: wait and retry, or go dead for a human.

- transient (429, 5xx, timeouts, paused location): `RetryLater` with the client's delay;
- GHL install needs re-authorisation: `RetryLater` with a long delay, so events wait for the
  human instead of dying (a replay would be needed otherwise);
- anything else typed (422, 404, scope, Wizehire 4xx): `PermanentFailure`, in words.
Untyped exceptions are left alone: the worker retries them as bugs with backoff.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wizesync.ghl.errors import GhlError, GhlNeedsReauth
from wizesync.inbox.context import PermanentFailure, RetryLater
from wizesync.wizehire.errors import WizehireError

REAUTH_DELAY_SECONDS = 1800.0


@contextmanager
def calling(what: str) -> Iterator[None]:
    """`with calling("GHL create invoice for wh_ord_1"):` around one outbound step."""
    try:
        yield
    except GhlNeedsReauth as exc:
        raise RetryLater(f"{what}: the GHL install needs re-authorisation ({exc})",
                         REAUTH_DELAY_SECONDS,
                         alert="A GHL installation needs re-authorisation: events for it wait. "
                               "Re-install through /oauth/ghl/install.") from exc
    except (GhlError, WizehireError) as exc:
        if exc.transient:
            delay = getattr(exc, "delay", None) or getattr(exc, "retry_after", None)
            raise RetryLater(f"{what}: {exc}", delay) from exc
        raise PermanentFailure(f"{what}: {exc}") from exc
