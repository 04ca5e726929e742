"""Both ways of proving the service to Wizehire: a bearer key, or OAuth2 client credentials with
the token fetched once, reused until it expires, and fetched again after a 401."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr

from tests.conftest import make_settings
from tests.wizehire import kit
from tests.wizehire.kit import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    KEY,
    REFUND_URL,
    SYNC_URL,
    TOKEN_URL,
    token_answer,
)
from wizesync.config import ConfigError
from wizesync.wizehire.auth import ApiKeyAuth, ClientCredentialsAuth
from wizesync.wizehire.client import build_wizehire_client
from wizesync.wizehire.errors import WizehireAuthError, WizehireServerError

UNAUTHORIZED = {"error": "unauthorized", "message": "the bearer token is not valid"}


def _settings(**values: object):  # type: ignore[no-untyped-def]
    return make_settings("sqlite+aiosqlite:///:memory:", wizehire_api_url=kit.BASE, **values)


@respx.mock
async def test_client_credentials_token_is_fetched_once_for_several_calls() -> None:
    token = respx.post(TOKEN_URL).mock(return_value=token_answer("at_1"))
    sync = respx.patch(SYNC_URL).respond(200, json={})
    refund = respx.patch(REFUND_URL).respond(200, json={})
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, auth=kit.client_credentials())
        for _ in range(3):
            await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY)
        await client.update_refund(kit.REFUND_ID, kit.refund_update(), idempotency_key=KEY)

    assert token.call_count == 1
    token_request = token.calls.last.request
    assert token_request.method == "POST"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {basic}"
    assert {c.request.headers["Authorization"] for c in [*sync.calls, *refund.calls]} == {
        "Bearer at_1"
    }


@respx.mock
async def test_concurrent_first_calls_share_one_token_fetch() -> None:
    token = respx.post(TOKEN_URL).mock(return_value=token_answer("at_1"))
    respx.patch(SYNC_URL).respond(200, json={})
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, auth=kit.client_credentials())
        await asyncio.gather(
            *(
                client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=f"k{i}")
                for i in range(5)
            )
        )
    assert token.call_count == 1


@respx.mock
async def test_token_is_fetched_again_after_wizehire_refuses_it_and_the_call_is_resent() -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[token_answer("at_old"), token_answer("at_new")])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer at_old":
            return httpx.Response(401, json=UNAUTHORIZED)
        return httpx.Response(200, json={"ok": True})

    sync = respx.patch(SYNC_URL).mock(side_effect=answer)
    sleeps = kit.Sleeps()
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, auth=kit.client_credentials(), sleep=sleeps)
        result = await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY)
        await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY)

    assert result.body == {"ok": True}
    assert token.call_count == 2
    assert [c.request.headers["Authorization"] for c in sync.calls] == [
        "Bearer at_old",
        "Bearer at_new",
        "Bearer at_new",
    ]
    assert {c.request.headers["Idempotency-Key"] for c in sync.calls} == {KEY}
    assert sleeps.waits == []  # a refused token is not a failure to back off from


@respx.mock
async def test_a_second_401_with_a_fresh_token_is_an_auth_error() -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[token_answer("at_1"), token_answer("at_2")])
    sync = respx.patch(SYNC_URL).respond(401, json=UNAUTHORIZED)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, auth=kit.client_credentials())
        with pytest.raises(WizehireAuthError) as caught:
            await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY)
    assert caught.value.status == 401 and "not valid" in caught.value.detail
    assert token.call_count == 2 and sync.call_count == 2


@respx.mock
async def test_an_expired_token_is_replaced_before_the_call() -> None:
    # expires_in below the leeway: every call finds the cached token (about to be) expired.
    token = respx.post(TOKEN_URL).mock(
        side_effect=[token_answer("at_1", expires_in=30), token_answer("at_2", expires_in=3600)]
    )
    sync = respx.patch(SYNC_URL).respond(200, json={})
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, auth=kit.client_credentials(leeway=60))
        for _ in range(3):
            await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY)
    assert token.call_count == 2
    assert [c.request.headers["Authorization"] for c in sync.calls] == [
        "Bearer at_1",
        "Bearer at_2",
        "Bearer at_2",
    ]


@respx.mock
async def test_api_key_401_is_not_retried() -> None:
    sync = respx.patch(SYNC_URL).respond(401, json=UNAUTHORIZED)
    async with httpx.AsyncClient() as http:
        with pytest.raises(WizehireAuthError):
            await kit.make_client(http).sync_order(
                kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
            )
    assert sync.call_count == 1
    assert sync.calls.last.request.headers["Authorization"] == f"Bearer {API_KEY}"


@respx.mock
async def test_token_endpoint_refusing_the_client_says_so_in_words() -> None:
    respx.post(TOKEN_URL).respond(
        401, json={"error": "invalid_client", "error_description": "unknown client"}
    )
    sync = respx.patch(SYNC_URL).respond(200, json={})
    async with httpx.AsyncClient() as http:
        with pytest.raises(WizehireAuthError) as caught:
            await kit.make_client(http, auth=kit.client_credentials()).sync_order(
                kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
            )
    assert "refused the client credentials" in str(caught.value)
    assert caught.value.code == "invalid_client"
    assert CLIENT_SECRET not in str(caught.value)
    assert sync.call_count == 0


@respx.mock
async def test_token_endpoint_outage_is_retried_like_any_server_error() -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[httpx.Response(503), token_answer("at_1")])
    sync = respx.patch(SYNC_URL).respond(200, json={})
    sleeps = kit.Sleeps()
    async with httpx.AsyncClient() as http:
        await kit.make_client(http, auth=kit.client_credentials(), sleep=sleeps).sync_order(
            kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
        )
    assert token.call_count == 2 and sync.call_count == 1 and len(sleeps.waits) == 1


@respx.mock
async def test_token_endpoint_outage_that_lasts_raises_a_server_error() -> None:
    respx.post(TOKEN_URL).respond(502, text="bad gateway")
    async with httpx.AsyncClient() as http:
        with pytest.raises(WizehireServerError) as caught:
            await kit.make_client(http, auth=kit.client_credentials(), max_attempts=3).sync_order(
                kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
            )
    assert caught.value.attempts == 3 and caught.value.detail == "bad gateway"


def test_secrets_stay_out_of_every_repr() -> None:
    cc = kit.client_credentials()
    for text in (
        repr(ApiKeyAuth(API_KEY)),
        repr(cc),
        repr(build_wizehire_client(_settings(wizehire_api_key=API_KEY), httpx.AsyncClient())),
    ):
        assert API_KEY not in text and CLIENT_SECRET not in text
    assert CLIENT_ID in repr(cc) and TOKEN_URL in repr(cc)


def test_factory_picks_the_api_key_mode() -> None:
    client = build_wizehire_client(_settings(wizehire_api_key=API_KEY), httpx.AsyncClient())
    assert client.auth_mode == "api_key"


def test_factory_picks_the_client_credentials_mode() -> None:
    client = build_wizehire_client(
        _settings(
            wizehire_token_url=TOKEN_URL,
            wizehire_client_id=CLIENT_ID,
            wizehire_client_secret=CLIENT_SECRET,
        ),
        httpx.AsyncClient(),
    )
    assert client.auth_mode == "client_credentials"


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({}, "no Wizehire API credentials are configured: set WIZEHIRE_API_KEY"),
        (
            {"wizehire_token_url": TOKEN_URL, "wizehire_client_id": CLIENT_ID},
            "WIZEHIRE_CLIENT_SECRET missing",
        ),
        (
            {"wizehire_api_key": API_KEY, "wizehire_client_id": CLIENT_ID},
            "either the API key or the client credentials, not both",
        ),
    ],
    ids=["neither", "incomplete", "both"],
)
def test_factory_says_in_words_what_is_missing(values: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        build_wizehire_client(_settings(**values), httpx.AsyncClient())


def test_an_empty_api_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        ApiKeyAuth(SecretStr(" "))


async def test_client_credentials_auth_can_send_the_secret_in_the_body() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return token_answer("at_1")

    auth = ClientCredentialsAuth(
        token_url=TOKEN_URL,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="orders:write",
        auth_method="client_secret_post",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        assert await auth.token(http) == "at_1"
    form = parse_qs(seen[0].content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "scope": ["orders:write"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    assert "Authorization" not in seen[0].headers
