"""Signature checks for both sources. Each raises `SignatureError` with a reason for the logs.

Every way a hostile request can be malformed (missing or garbled headers, bad base64) ends in
`SignatureError`, never in an unhandled exception. Signatures are over the body's bytes: an
authentic body that is not UTF-8 verifies, and is then quarantined as "not JSON" (422), like any
authentic body that does not parse.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class SignatureError(Exception):
    """The request is not provably from the sender; `reason` is a short label for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class WizehireVerifier:
    """Standard Webhooks (HMAC-SHA256 over `id.timestamp.body`), any of several secrets."""

    HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("at least one Wizehire webhook secret is required")
        self._webhooks = [Webhook(secret) for secret in secrets]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Returns the event id (the `webhook-id` header) of an authentic request."""
        picked = {name: headers.get(name, "") for name in self.HEADERS}
        if not all(picked.values()):
            raise SignatureError("missing_headers", "webhook-id/timestamp/signature required")
        garbled = _garbled_signature_list(picked["webhook-signature"])
        if garbled:
            raise SignatureError("malformed", garbled)
        last_error = "no matching signature"
        for webhook in self._webhooks:
            try:
                webhook.verify(body, picked, json_parse=False)
                return picked["webhook-id"]
            except WebhookVerificationError as exc:
                last_error = str(exc)
                if "timestamp" in last_error.lower() or "headers" in last_error.lower():
                    break  # the same for every secret
            except (ValueError, TypeError, IndexError, binascii.Error) as exc:
                # A plain error from the library on input it cannot handle: still a refusal.
                raise SignatureError("malformed", f"malformed signature input: {exc}") from exc
        reason = "stale_timestamp" if "timestamp" in last_error.lower() else "bad_signature"
        raise SignatureError(reason, last_error)


def _garbled_signature_list(header: str) -> str | None:
    """Why `webhook-signature` is not a space-separated list of `<version>,<base64>`, or None.

    Checked here, not left to standardwebhooks: since 1.3 it only compares whole strings, so a
    garbled list would count as a wrong signature, and the logs and metrics would not tell a
    sender's broken signing from a forged request. (Characters outside the base64 alphabet are
    skipped, as in the library's own decoding: `v1,!!!` is merely a wrong signature.)
    """
    for entry in header.split(" "):
        version, comma, signature = entry.partition(",")
        if not comma or not version or "," in signature:
            return f"signature entry {entry[:20]!r} is not <version>,<base64>"
        try:
            base64.b64decode(signature)
        except ValueError:  # binascii.Error, or characters outside ASCII
            return "signature is not base64"
    return None


def load_ed25519(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def load_rsa(pem: str) -> RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


class GhlVerifier:
    """`X-GHL-Signature`: base64 Ed25519 over the raw body. Legacy RSA only when configured."""

    def __init__(self, ed25519_pems: list[str], rsa_pem: str | None = None) -> None:
        self._keys = [load_ed25519(pem) for pem in ed25519_pems]
        self._rsa = load_rsa(rsa_pem) if rsa_pem else None

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Returns which scheme verified the request ("ed25519" or "rsa")."""
        signature = _present(headers.get("x-ghl-signature"))
        if signature is not None:
            raw = _b64(signature)
            for key in self._keys:
                try:
                    key.verify(raw, body)
                    return "ed25519"
                except InvalidSignature:
                    continue
            raise SignatureError("bad_signature", "X-GHL-Signature does not verify")
        legacy = _present(headers.get("x-wh-signature"))
        if legacy is not None:
            if self._rsa is None:
                raise SignatureError(
                    "legacy_not_accepted",
                    "X-WH-Signature (retired RSA scheme) is not accepted: no RSA key configured",
                )
            try:
                self._rsa.verify(_b64(legacy), body, padding.PKCS1v15(), hashes.SHA256())
                return "rsa"
            except InvalidSignature as exc:
                raise SignatureError("bad_signature", "X-WH-Signature does not verify") from exc
        raise SignatureError("missing_headers", "no X-GHL-Signature header")


def _present(value: str | None) -> str | None:
    """GHL sends the literal `N/A` for "no signature"."""
    if value is None:
        return None
    value = value.strip()
    return None if not value or value.upper() == "N/A" else value


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("malformed", "signature is not base64") from exc
