"""`wizesync doctor` on refund gateways: each named variable set, and one harmless call per
gateway with those credentials (respx stands in for Stripe, NMI and Authorize.net)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import respx

from tests.conftest import make_settings
from wizesync.flows.refunds.doctor_checks import refund_gateway_checks

STRIPE = "https://stripe.test"
NMI = "https://nmi.test/api/transact.php"
AUTHNET = "https://authnet.test/xml/v1/request.api"
MAPPING = """
refunds:
  executor: auto
  gateways:
    default: {stripe: {api_key_env: DOC_STRIPE_KEY}}
    loc_1: {nmi: {security_key_env: DOC_NMI_KEY},
            authorize_net: {login_id_env: DOC_AN_LOGIN, transaction_key_env: DOC_AN_KEY}}
"""
ENV = {
    "DOC_STRIPE_KEY": "sk_test_doctor",
    "DOC_NMI_KEY": "nmi-doctor",
    "DOC_AN_LOGIN": "an-login",
    "DOC_AN_KEY": "an-key",
}


def _settings(tmp_path: Path, text: str = MAPPING):  # type: ignore[no-untyped-def]
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return make_settings(
        "sqlite+aiosqlite:///:memory:",
        mapping_file=str(path),
        stripe_api_base=STRIPE,
        nmi_api_url=NMI,
        authnet_api_url=AUTHNET,
    )


def _by_label(results: list[tuple[bool, str, str]]) -> dict[str, tuple[bool, str]]:
    return {label: (ok, message) for ok, label, message in results}


@respx.mock
async def test_each_gateway_is_called_once_harmlessly_and_no_secret_is_shown(
    tmp_path: Path,
) -> None:
    stripe = respx.get(f"{STRIPE}/v1/refunds").mock(
        return_value=httpx.Response(
            200, json={"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"}
        )
    )
    nmi = respx.post("https://nmi.test/api/query.php").mock(
        return_value=httpx.Response(200, text="<?xml version='1.0'?><nm_response></nm_response>")
    )
    authnet = respx.post(AUTHNET).mock(
        return_value=httpx.Response(
            200,
            content=(
                b"\xef\xbb\xbf"
                + json.dumps(
                    {
                        "messages": {
                            "resultCode": "Ok",
                            "message": [{"code": "I00001", "text": "Successful."}],
                        }
                    }
                ).encode()
            ),
        )
    )

    results = _by_label(await refund_gateway_checks(_settings(tmp_path), ENV))

    assert results == {
        "refunds stripe (default)": (True, "credentials set (DOC_STRIPE_KEY) and accepted"),
        "refunds nmi (loc_1)": (True, "credentials set (DOC_NMI_KEY) and accepted"),
        "refunds authorize_net (loc_1)": (
            True,
            "credentials set (DOC_AN_KEY, DOC_AN_LOGIN) and accepted",
        ),
    }
    assert stripe.calls.last.request.url.params["limit"] == "1"
    assert stripe.calls.last.request.headers["authorization"] == "Bearer sk_test_doctor"
    assert b"security_key=nmi-doctor" in nmi.calls.last.request.content
    sent = json.loads(authnet.calls.last.request.content)
    assert list(sent) == ["authenticateTestRequest"]
    assert all(value not in str(results) for value in ENV.values())


@respx.mock
async def test_unset_variables_and_refused_credentials_are_said_in_words(
    tmp_path: Path,
) -> None:
    respx.get(f"{STRIPE}/v1/refunds").mock(
        return_value=httpx.Response(
            401,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "message": "Invalid API Key provided: sk_test_***",
                }
            },
        )
    )
    respx.post(AUTHNET).mock(
        return_value=httpx.Response(
            200,
            content=(
                b"\xef\xbb\xbf"
                + json.dumps(
                    {
                        "messages": {
                            "resultCode": "Error",
                            "message": [
                                {
                                    "code": "E00007",
                                    "text": "User authentication failed due to invalid "
                                    "authentication values.",
                                }
                            ],
                        }
                    }
                ).encode()
            ),
        )
    )
    env = {k: v for k, v in ENV.items() if k != "DOC_NMI_KEY"}

    results = _by_label(await refund_gateway_checks(_settings(tmp_path), env))

    assert results["refunds stripe (default)"] == (False, "Stripe refused the API key (401)")
    assert results["refunds nmi (loc_1)"] == (
        False,
        "environment variable(s) not set: DOC_NMI_KEY (security_key_env)",
    )
    ok, message = results["refunds authorize_net (loc_1)"]
    assert not ok and "E00007" in message and "refused the credentials" in message


async def test_a_mapping_without_gateways_says_refunds_go_to_a_human(tmp_path: Path) -> None:
    results = await refund_gateway_checks(_settings(tmp_path, "refunds: {executor: auto}\n"), {})

    assert results == [
        (
            True,
            "refund gateways",
            "executor auto: no gateway credentials are "
            "named in the mapping, so refunds go to a "
            "human (manual_action_required)",
        )
    ]


async def test_an_unknown_gateway_in_the_mapping_fails_the_check(tmp_path: Path) -> None:
    results = await refund_gateway_checks(
        _settings(tmp_path, "refunds: {gateways: {default: {square: {token_env: SQ}}}}\n"), {}
    )

    [(ok, _label, message)] = results
    assert not ok and "refunds.gateways.default.square: no such gateway" in message
