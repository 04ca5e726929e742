"""Why a connection failed, in words: DNS, refused, timeout (for doctor, CLI and /sync-status).

httpx wraps the socket error a few levels deep (async: "All connection attempts failed" around
the real `ConnectionRefusedError`), so the whole cause chain is read.
"""

from __future__ import annotations

import socket

import httpx

_DNS = (
    "name or service not known",
    "nodename nor servname",
    "name resolution",
    "getaddrinfo",
    "no address associated",
    "temporary failure in name",
)


def connection_problem(exc: BaseException) -> str:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain):
        return "no answer in time (timeout)"
    if any(isinstance(e, socket.gaierror) or any(s in str(e).lower() for s in _DNS) for e in chain):
        return "the host name does not resolve (DNS)"
    if any(isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() for e in chain):
        return "the connection was refused (nothing listens at that address)"
    innermost = chain[-1]
    return f"cannot connect ({type(innermost).__name__}: {innermost})"
