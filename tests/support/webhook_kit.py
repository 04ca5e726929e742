"""Tools for the webhook tests: test signing keys, an independent signer, inbox and metric reads.

The Standard Webhooks signer here is written from the spec (HMAC-SHA256 over `id.timestamp.body`)
rather than through the `standardwebhooks` package, so a test signs bytes the package could not
(non-UTF-8 bodies) and a bug shared by signer and verifier cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import inbox_repo
from wizesync.db.models import InboxEvent

PROBLEM_JSON = "application/problem+json"
MIB = 1024 * 1024


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(
        key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def wizehire_signed(
    payload: Any,
    secret: str,
    *,
    event_id: str | None = None,
    timestamp: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    event_id = event_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return body, {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhooks_signature(secret, event_id, stamp, body),
    }


@dataclass(frozen=True)
class Ed25519TestKey:
    """A freshly generated key pair standing in for GHL's (whose private half nobody has)."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Ed25519TestKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private.sign(body)).decode()


@dataclass(frozen=True)
class RsaTestKey:
    """The legacy `X-WH-Signature` scheme: RSA PKCS#1 v1.5 with SHA-256 over the raw body."""

    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> RsaTestKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, body: bytes) -> str:
        return base64.b64encode(
            self.private.sign(body, padding.PKCS1v15(), hashes.SHA256())
        ).decode()


def ghl_signed(
    payload: Any, key: Ed25519TestKey, *, header: str = "x-ghl-signature"
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {"content-type": "application/json", header: key.sign(body)}


def ghl_rsa_signed(payload: Any, key: RsaTestKey) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {"content-type": "application/json", "x-wh-signature": key.sign(body)}


# --- the inbox, read through its repository --------------------------------------------------


async def stored_total(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return sum((await inbox_repo.queue_counts(session)).values())


async def stored_event(sessionmaker: async_sessionmaker[AsyncSession], row_id: int) -> InboxEvent:
    async with sessionmaker() as session:
        event = await inbox_repo.get_event(session, row_id)
    assert event is not None, f"inbox row {row_id} is missing"
    return event


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 answer with the expected status, and no stack trace in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["type"]
    assert "Traceback" not in response.text
    return problem


# --- metrics ------------------------------------------------------------------------------------

WebhookCounts = dict[tuple[str, str, str], float]


async def webhook_counts(client: httpx.AsyncClient) -> WebhookCounts:
    """`wizesync_webhooks_total` by (source, outcome, reason), as `/metrics` exposes it."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    counts: WebhookCounts = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "wizesync_webhooks_total":
                labels = sample.labels
                counts[(labels["source"], labels["outcome"], labels["reason"])] = sample.value
    return counts


def counts_delta(before: WebhookCounts, after: WebhookCounts) -> WebhookCounts:
    """What changed between two reads (the registry is process-global, so only deltas count)."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if after[key] != before.get(key, 0.0)
    }
