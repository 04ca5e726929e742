"""What the form/JSON gateways share: one POST, with transport trouble in words."""

from __future__ import annotations

from typing import Any

import httpx

from wizesync.flows.refunds.gateways import GatewayUnavailable


async def post(
    http: httpx.AsyncClient, url: str, *, name: str, limits: httpx.Timeout, **kwargs: Any
) -> httpx.Response:
    """The gateway's answer when it is one to read (2xx/4xx); GatewayUnavailable otherwise:
    the request may or may not have been performed."""
    try:
        response = await http.post(url, timeout=limits, **kwargs)
    except httpx.TimeoutException:
        raise GatewayUnavailable(f"{name} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise GatewayUnavailable(f"{name} could not be reached ({type(exc).__name__})") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise GatewayUnavailable(f"{name} answered HTTP {response.status_code}")
    return response
