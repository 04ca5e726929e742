"""Where a host name points, judged without a DNS lookup: loopback, private, link-local, ...

For the production guard (external URLs must be public https) and `wizesync serve` (development
binds to loopback only). IP literals in every spelling a resolver accepts count: `[::1]`,
`::ffff:127.0.0.1`, and the legacy IPv4 forms `127.1`, `2130706433` or `0x7f000001`.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".invalid", ".test")


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` spells literally, or None for a name."""
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone id aside
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def non_public_reason(host: str) -> str | None:
    """Why `host` is not a public internet host (loopback, private, ...), or None."""
    host = host.lower().rstrip(".")
    if not host:
        return "no host"
    if host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES):
        return "a local name"
    address = ip_of(host)
    if address is None:
        return None
    for label, flagged in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flagged:
            return f"a {label} address"
    return None


def url_problem(url: str) -> str | None:
    """Why `url` is unfit as a production endpoint (not https, or not a public host), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "is not a URL"
    if parts.scheme != "https":
        return "must be https"
    why = non_public_reason(host)
    return f"points at {why} ({host})" if why else None


def is_loopback_host(host: str) -> bool:
    """Whether binding to `host` listens on this machine only."""
    host = host.lower().strip("[]")
    if host in ("localhost",):
        return True
    address = ip_of(host)
    return address is not None and address.is_loopback
