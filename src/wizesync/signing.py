"""Sign outgoing test events the way each sender does (`trigger`, `doctor --go-live`, the sandbox,
tests)."""

from __future__ import annotations

import base64
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks.webhooks import Webhook

from wizesync.devmode import SANDBOX_GHL_PRIVATE_KEY_PEM


def wizehire_headers(
    secret: str, body: bytes, *, event_id: str | None = None, timestamp: float | None = None
) -> dict[str, str]:
    from datetime import UTC, datetime

    event_id = event_id or f"msg_{uuid.uuid4().hex}"
    ts = timestamp if timestamp is not None else time.time()
    signature = Webhook(secret).sign(event_id, datetime.fromtimestamp(ts, UTC), body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(ts)),
        "webhook-signature": signature,
    }


def ghl_headers(body: bytes, private_key_pem: str = SANDBOX_GHL_PRIVATE_KEY_PEM) -> dict[str, str]:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return {
        "content-type": "application/json",
        "x-ghl-signature": base64.b64encode(key.sign(body)).decode(),
    }
