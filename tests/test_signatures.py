"""The two signature verifiers on their own (no app, no database).

Whatever a hostile sender puts in the headers or the body, a verifier either returns or raises
`SignatureError`: anything else would be a 500.
"""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.webhook_kit import (
    Ed25519TestKey,
    RsaTestKey,
    new_whsec,
    standard_webhooks_signature,
    wizehire_signed,
)
from wizesync.config import GHL_ED25519_PUBLIC_KEY, Settings
from wizesync.devmode import SANDBOX_GHL_PUBLIC_KEY_PEM
from wizesync.inbox.signatures import (
    GhlVerifier,
    SignatureError,
    WizehireVerifier,
    load_ed25519,
    load_rsa,
)
from wizesync.signing import ghl_headers, wizehire_headers
from wizesync.state import build_verifiers

BODY = b'{"type": "order.created", "data": {}}'
SECRET = new_whsec()
KEY = Ed25519TestKey.generate()
RSA_KEY = RsaTestKey.generate()


def reason_of(verify, body: bytes, headers: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureError) as caught:
        verify(body, headers)
    return caught.value.reason


# --- Wizehire: Standard Webhooks ----------------------------------------------------------------


def test_wizehire_valid_signature_returns_the_webhook_id() -> None:
    body, headers = wizehire_signed(BODY, SECRET, event_id="msg_abc")
    assert WizehireVerifier([SECRET]).verify(body, headers) == "msg_abc"


def test_wizehire_signature_made_by_the_sandbox_signer_verifies() -> None:
    """`wizesync trigger` and the sandbox sign with the package; the spec signer agrees."""
    headers = wizehire_headers(SECRET, BODY, event_id="msg_trigger")
    assert WizehireVerifier([SECRET]).verify(BODY, headers) == "msg_trigger"
    assert headers["webhook-signature"] == standard_webhooks_signature(
        SECRET, "msg_trigger", headers["webhook-timestamp"], BODY
    )


def test_wizehire_header_with_several_signatures_verifies_if_any_matches() -> None:
    body, headers = wizehire_signed(BODY, SECRET)
    headers["webhook-signature"] = "v1,Zm9v " + headers["webhook-signature"]
    assert WizehireVerifier([SECRET]).verify(body, headers) == headers["webhook-id"]


def test_wizehire_rotation_accepts_every_listed_secret_and_no_other() -> None:
    new, old, retired = new_whsec(), new_whsec(), new_whsec()
    verifier = WizehireVerifier([new, old])
    for secret in (new, old):
        body, headers = wizehire_signed(BODY, secret)
        assert verifier.verify(body, headers) == headers["webhook-id"]
    body, headers = wizehire_signed(BODY, retired)
    assert reason_of(verifier.verify, body, headers) == "bad_signature"


def test_settings_split_the_rotation_secrets_on_whitespace() -> None:
    settings = Settings(_env_file=None, wizehire_webhook_secret="whsec_a  whsec_b\twhsec_c")
    assert settings.wizehire_webhook_secrets == ["whsec_a", "whsec_b", "whsec_c"]


def test_wizehire_verifier_refuses_to_exist_without_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        WizehireVerifier([])


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(-301, "stale_timestamp"), (+301, "stale_timestamp"), (-3600 * 24, "stale_timestamp")],
)
def test_wizehire_timestamp_more_than_five_minutes_off_is_refused(offset: int, reason: str) -> None:
    # Signed with the right secret: only the time is wrong; every secret is tried in vain.
    body, headers = wizehire_signed(BODY, SECRET, timestamp=time.time() + offset)
    assert reason_of(WizehireVerifier([new_whsec(), SECRET]).verify, body, headers) == reason


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("webhook-signature", "", "missing_headers"),
        ("webhook-id", "", "missing_headers"),
        ("webhook-timestamp", "", "missing_headers"),
        ("webhook-signature", "v1", "malformed"),
        ("webhook-signature", "abc", "malformed"),
        ("webhook-signature", "v1,abc", "malformed"),
        ("webhook-signature", "v1,a,b", "malformed"),
        ("webhook-signature", "v1,!!!", "bad_signature"),
        ("webhook-signature", "v2,Zm9vYmFy", "bad_signature"),
        ("webhook-signature", " ", "malformed"),
        ("webhook-timestamp", "yesterday", "bad_signature"),
        ("webhook-timestamp", "nan", "bad_signature"),
        ("webhook-timestamp", "inf", "bad_signature"),
        ("webhook-timestamp", "1e300", "bad_signature"),
        ("webhook-timestamp", "0", "stale_timestamp"),
    ],
)
def test_wizehire_malformed_header_raises_signature_error(
    header: str, value: str, reason: str
) -> None:
    body, headers = wizehire_signed(BODY, SECRET)
    headers[header] = value
    assert reason_of(WizehireVerifier([SECRET]).verify, body, headers) == reason


def test_wizehire_non_utf8_body_with_the_right_hmac_is_authentic() -> None:
    """Signatures are over bytes: such a body is authentic (the route quarantines it, 422)."""
    body = b"\xff\xfe" + BODY
    _, headers = wizehire_signed(BODY, SECRET)
    headers["webhook-signature"] = standard_webhooks_signature(
        SECRET, headers["webhook-id"], headers["webhook-timestamp"], body
    )
    assert WizehireVerifier([SECRET]).verify(body, headers) == headers["webhook-id"]
    _, unsigned = wizehire_signed(BODY, SECRET)  # the signature of other bytes
    assert reason_of(WizehireVerifier([SECRET]).verify, body, unsigned) == "bad_signature"


@settings(max_examples=300, deadline=None)
@given(
    webhook_id=st.text(max_size=40),
    timestamp=st.one_of(st.text(max_size=30), st.integers().map(str), st.floats().map(str)),
    signature=st.one_of(
        st.text(max_size=80),
        st.lists(
            st.tuples(st.sampled_from(["v1", "v2", "", "v1a"]), st.text(max_size=50)), max_size=3
        ).map(lambda sigs: " ".join(f"{v},{s}" for v, s in sigs)),
    ),
    body=st.binary(max_size=200),
)
def test_wizehire_verifier_never_raises_anything_but_signature_error(
    webhook_id: str, timestamp: str, signature: str, body: bytes
) -> None:
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    try:
        WizehireVerifier([SECRET, new_whsec()]).verify(body, headers)
    except SignatureError:
        return
    pytest.fail("a made-up signature verified")


# --- GHL: Ed25519, legacy RSA --------------------------------------------------------------------


def ghl_verifier(*, rsa: bool = False) -> GhlVerifier:
    return GhlVerifier([KEY.public_pem], RSA_KEY.public_pem if rsa else None)


def test_ghl_valid_ed25519_signature_verifies() -> None:
    assert ghl_verifier().verify(BODY, {"x-ghl-signature": KEY.sign(BODY)}) == "ed25519"


def test_ghl_any_configured_key_verifies() -> None:
    other = Ed25519TestKey.generate()
    verifier = GhlVerifier([KEY.public_pem, other.public_pem])
    assert verifier.verify(BODY, {"x-ghl-signature": other.sign(BODY)}) == "ed25519"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_headers"),
        ({"x-ghl-signature": ""}, "missing_headers"),
        ({"x-ghl-signature": "N/A"}, "missing_headers"),
        ({"x-ghl-signature": " n/a "}, "missing_headers"),
        ({"x-ghl-signature": "N/A", "x-wh-signature": "N/A"}, "missing_headers"),
        ({"x-ghl-signature": "abc"}, "malformed"),
        ({"x-ghl-signature": "not base64!!"}, "malformed"),
        ({"x-ghl-signature": "v1,Zm9v"}, "malformed"),
        ({"x-ghl-signature": "Zm9v"}, "bad_signature"),
        ({"x-ghl-signature": base64.b64encode(b"\0" * 64).decode()}, "bad_signature"),
        ({"x-ghl-signature": Ed25519TestKey.generate().sign(BODY)}, "bad_signature"),
        ({"x-ghl-signature": KEY.sign(BODY + b" ")}, "bad_signature"),
        ({"x-wh-signature": RSA_KEY.sign(BODY)}, "legacy_not_accepted"),
    ],
)
def test_ghl_missing_wrong_or_malformed_signature_is_refused(
    headers: dict[str, str], reason: str
) -> None:
    assert reason_of(ghl_verifier().verify, BODY, headers) == reason


def test_ghl_legacy_rsa_signature_verifies_only_with_its_key_configured() -> None:
    headers = {"x-ghl-signature": "N/A", "x-wh-signature": RSA_KEY.sign(BODY)}
    assert ghl_verifier(rsa=True).verify(BODY, headers) == "rsa"
    assert reason_of(ghl_verifier().verify, BODY, headers) == "legacy_not_accepted"


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (RsaTestKey.generate().sign(BODY), "bad_signature"),
        (RSA_KEY.sign(b"another body"), "bad_signature"),
        ("Zm9v", "bad_signature"),
        ("%%%", "malformed"),
    ],
)
def test_ghl_wrong_legacy_rsa_signature_is_refused(signature: str, reason: str) -> None:
    headers = {"x-wh-signature": signature}
    assert reason_of(ghl_verifier(rsa=True).verify, BODY, headers) == reason


def test_ghl_key_loaders_refuse_the_wrong_kind_of_key() -> None:
    with pytest.raises(ValueError, match="Ed25519"):
        load_ed25519(RSA_KEY.public_pem)
    with pytest.raises(ValueError, match="RSA"):
        load_rsa(KEY.public_pem)


@settings(max_examples=300, deadline=None)
@given(
    ghl=st.one_of(
        st.none(),
        st.text(max_size=120),
        st.binary(max_size=90).map(lambda b: base64.b64encode(b).decode()),
    ),
    legacy=st.one_of(
        st.none(),
        st.text(max_size=120),
        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    ),
    body=st.binary(max_size=200),
)
def test_ghl_verifier_never_raises_anything_but_signature_error(
    ghl: str | None, legacy: str | None, body: bytes
) -> None:
    headers = {
        name: value
        for name, value in (("x-ghl-signature", ghl), ("x-wh-signature", legacy))
        if value is not None
    }
    try:
        ghl_verifier(rsa=True).verify(body, headers)
    except SignatureError:
        return
    pytest.fail("a made-up signature verified")


# --- which GHL keys a service trusts --------------------------------------------------------------


def _production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "_env_file": None,
        "wizesync_env": "production",
        "admin_token": "prod-admin-token-7f3a9c-0123456789abcdef",
        "database_url": "postgresql+asyncpg://wizesync@db.internal/wizesync",
        "wizehire_webhook_secret": SECRET,
        "wizehire_api_url": "https://api.wizehire.example",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_default_ghl_key_is_ghls_published_ed25519_key() -> None:
    settings = _production()
    assert settings.ghl_public_key_pem == GHL_ED25519_PUBLIC_KEY
    load_ed25519(settings.ghl_public_key_pem)  # a real Ed25519 key, not a placeholder
    assert settings.ghl_rsa_public_key_pem is None


def test_production_trusts_only_the_configured_key_not_the_sandbox_one() -> None:
    settings = _production(ghl_webhook_public_key=KEY.public_pem)
    _, verifier = build_verifiers(settings, extra_ghl_keys=[SANDBOX_GHL_PUBLIC_KEY_PEM])

    assert verifier.verify(BODY, {"x-ghl-signature": KEY.sign(BODY)}) == "ed25519"
    sandbox_signed = ghl_headers(BODY)
    assert reason_of(verifier.verify, BODY, sandbox_signed) == "bad_signature"


@pytest.mark.parametrize("env", ["development", "test"])
def test_the_running_in_process_sandbox_makes_its_key_trusted_too(env: str) -> None:
    settings = Settings(
        _env_file=None,
        wizesync_env=env,  # type: ignore[arg-type]
        ghl_webhook_public_key=KEY.public_pem,
    )
    _, verifier = build_verifiers(settings, extra_ghl_keys=[SANDBOX_GHL_PUBLIC_KEY_PEM])

    assert verifier.verify(BODY, ghl_headers(BODY)) == "ed25519"
    assert verifier.verify(BODY, {"x-ghl-signature": KEY.sign(BODY)}) == "ed25519"
    assert SANDBOX_GHL_PUBLIC_KEY_PEM not in settings.ghl_public_key_pem


def test_production_with_rsa_key_configured_verifies_legacy_signatures() -> None:
    _, verifier = build_verifiers(_production(ghl_webhook_rsa_public_key=RSA_KEY.public_pem))
    assert verifier.verify(BODY, {"x-wh-signature": RSA_KEY.sign(BODY)}) == "rsa"
