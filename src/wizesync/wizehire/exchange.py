"""One HTTP exchange with Wizehire (API or token endpoint): explicit timeouts, recorded in the
event's outbound-call log, logged without headers or bodies, transport failures typed."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from wizesync.outbound import record_outbound_call
from wizesync.wizehire.errors import WizehireUnavailable

log = logging.getLogger("wizesync.wizehire")

# Sent with every request, whatever the shared client's defaults: a hung Wizehire must surface as
# a timeout (retried, then WizehireUnavailable), never hold a worker slot forever.
WIZEHIRE_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=10.0)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    http_timeout: httpx.Timeout = WIZEHIRE_TIMEOUT,
    **kwargs: Any,
) -> httpx.Response:
    """The answer, whatever its status; `WizehireUnavailable` when none came."""
    request = http.build_request(method, url, timeout=http_timeout, **kwargs)
    shown = str(request.url)  # the query holds no personal data or secret on this API
    started = time.perf_counter()
    try:
        response = await http.send(request)
    except httpx.TimeoutException as exc:
        _done(method, shown, None, started)
        raise WizehireUnavailable(
            f"{method} {request.url.path} timed out ({type(exc).__name__})"
        ) from exc
    except httpx.TransportError as exc:
        _done(method, shown, None, started)
        raise WizehireUnavailable(
            f"{method} {request.url.path}: connection failed ({type(exc).__name__})"
        ) from exc
    _done(method, shown, response.status_code, started)
    return response


def _done(method: str, url: str, status: int | None, started: float) -> None:
    ms = (time.perf_counter() - started) * 1000
    record_outbound_call(method, url, status, ms)
    log.debug(
        "wizehire call", extra={"method": method, "url": url, "status": status, "ms": round(ms, 1)}
    )
