"""`wizesync ghl providers list|register` against the sandbox (in-process: the command's HTTP
client is routed to the sandbox app) and, for OAuth installations and GHL's failures, respx.
Both databases: the calls go through the budget shared in the database."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from tests.conftest import _empty_all_tables
from tests.ghl.kit import CLIENT_ID, CLIENT_SECRET, KEY_OLD, LOCATION, LOCATION_2, REDIRECT_URI
from tests.test_cli import assert_no_traceback, cli_env, run_cli, words  # noqa: F401 (fixture)
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.ghl.crypto import TokenCipher
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID
from wizesync_sandbox.server import create_sandbox_app
from wizesync_sandbox.settings import SandboxConfig

SANDBOX = "http://sandbox"
REAL_API = "https://ghl.test"
WHITELABEL = "/payments/integrations/provider/whitelabel"
GOOD = [
    "--provider",
    "nmi",
    "--unique-name",
    "acme-payments",
    "--title",
    "Acme Payments",
    "--description",
    "Cards through Acme's NMI gateway",
    "--image-url",
    "https://example.com/acme.png",
]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _empty(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_empty_all_tables, database_url)
    finally:
        await engine.dispose()


async def reserved_slots(database_url: str, location_id: str) -> int:
    from wizesync.db import rate_budget_repo

    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return (await rate_budget_repo.get_budgets(session))[location_id].next_seq
    finally:
        await engine.dispose()


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A seeded sandbox; every HTTP client the command builds answers from it in-process."""
    app = create_sandbox_app(SandboxConfig(webhooks="off", service_url=None), seed=True)

    def routed(settings: object, **_: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))

    monkeypatch.setattr("wizesync.ghl.http_client.build_http_client", routed)
    return app.state.sandbox


@pytest.fixture
def pit_env(cli_env: dict[str, str], database_url: str) -> dict[str, str]:  # noqa: F811
    run(_empty(database_url))
    return {
        **cli_env,
        "DATABASE_URL": database_url,
        "WIZESYNC_ENV": "test",
        "GHL_API_URL": f"{SANDBOX}/ghl",
        "GHL_PRIVATE_TOKEN": "pit-cli-token",
        "GHL_LOCATION_ID": DEFAULT_LOCATION_ID,
    }


def test_register_then_list_shows_the_provider(sandbox, pit_env) -> None:
    result = run_cli(
        pit_env, "ghl", "providers", "register", "--location", DEFAULT_LOCATION_ID, *GOOD
    )
    assert result.exit_code == 0, words(result)
    assert f"registered nmi provider acme-payments for location {DEFAULT_LOCATION_ID}" in words(
        result
    )
    [stored] = sandbox.store.providers.values()
    assert (stored["altId"], stored["route"], stored["provider"], stored["title"]) == (
        DEFAULT_LOCATION_ID,
        "acme-payments",
        "nmi",
        "Acme Payments",
    )
    assert stored["imageUrl"] == "https://example.com/acme.png"

    listed = run_cli(pit_env, "ghl", "providers", "list")
    assert listed.exit_code == 0, words(listed)
    text = words(listed)
    for shown in (DEFAULT_LOCATION_ID, "nmi", "acme-payments", "Acme Payments", stored["_id"]):
        assert shown in text
    assert sandbox.limiter.snapshot()[DEFAULT_LOCATION_ID]["today"] == 3  # list, register, list
    # ...each through the budget shared in the database, like the service's own calls.
    assert run(reserved_slots(pit_env["DATABASE_URL"], DEFAULT_LOCATION_ID)) == 3


def test_list_of_a_location_without_providers_says_none(sandbox, pit_env) -> None:
    result = run_cli(pit_env, "ghl", "providers", "list", "--location", DEFAULT_LOCATION_ID)
    assert result.exit_code == 0, words(result)
    assert "(none registered)" in words(result)


def test_register_asks_for_what_is_missing(sandbox, pit_env) -> None:
    answers = (
        "\n".join(
            [
                "",  # location: the PIT's location is offered as the default
                "stripe",  # not a choice: asked again
                "authorize-net",
                "acme-pay",
                "Acme",
                "Cards via Authorize.net",
                "https://example.com/a.png",
            ]
        )
        + "\n"
    )
    result = run_cli_input(pit_env, answers, "ghl", "providers", "register")
    assert result.exit_code == 0, words(result)
    text = words(result)
    for prompt in (
        "GHL location id",
        "Provider",
        "Unique name",
        "Title",
        "Description",
        "Image URL",
    ):
        assert prompt in text
    assert f"[{DEFAULT_LOCATION_ID}]" in text  # the offered default
    assert "is not one of" in text  # click's answer to "stripe"
    [stored] = sandbox.store.providers.values()
    assert (stored["provider"], stored["route"]) == ("authorize-net", "acme-pay")


def test_register_refuses_bad_input_in_words_and_asks_ghl_nothing(sandbox, pit_env) -> None:
    result = run_cli(
        pit_env,
        "ghl",
        "providers",
        "register",
        "--location",
        DEFAULT_LOCATION_ID,
        "--provider",
        "stripe",
        "--unique-name",
        "Acme_Pay",
        "--title",
        " ",
        "--description",
        "d",
        "--image-url",
        "http://example.com/a.png",
    )
    assert result.exit_code == 2
    text = words(result)
    assert "provider must be nmi or authorize-net, not 'stripe'" in text
    assert "unique name 'Acme_Pay' must start and end with a lowercase letter" in text
    assert "title must not be empty" in text
    assert "image URL must be a public https:// URL" in text
    assert_no_traceback(result)
    assert sandbox.store.providers == {}
    assert DEFAULT_LOCATION_ID not in sandbox.limiter.snapshot()


def test_list_of_a_malformed_location_id_exits_2(sandbox, pit_env) -> None:
    result = run_cli(pit_env, "ghl", "providers", "list", "--location", "../orders")
    assert result.exit_code == 2
    assert "--location: not a GHL location id: '../orders'" in words(result)
    assert_no_traceback(result)
    assert DEFAULT_LOCATION_ID not in sandbox.limiter.snapshot()


def test_register_for_a_location_that_is_not_configured_exits_2(sandbox, pit_env) -> None:
    result = run_cli(
        pit_env, "ghl", "providers", "register", "--location", "OtherLocation000001", *GOOD
    )
    assert result.exit_code == 2
    assert (
        f"location OtherLocation000001 is not configured here; configured: {DEFAULT_LOCATION_ID}"
    ) in words(result)


def test_registering_the_same_name_twice_changes_nothing(sandbox, pit_env) -> None:
    args = ["ghl", "providers", "register", "--location", DEFAULT_LOCATION_ID, *GOOD]
    assert run_cli(pit_env, *args).exit_code == 0
    again = run_cli(pit_env, *args)
    assert again.exit_code == 1
    assert "already has a provider named acme-payments" in words(again)
    assert "nothing changed" in words(again)
    assert len(sandbox.store.providers) == 1


def test_without_ghl_configuration_it_says_what_to_set(cli_env, sqlite_url) -> None:  # noqa: F811
    result = run_cli({**cli_env, "DATABASE_URL": sqlite_url}, "ghl", "providers", "list")
    assert result.exit_code == 2
    text = words(result)
    assert "GHL is not configured: set GHL_PRIVATE_TOKEN and GHL_LOCATION_ID" in text
    # Development: the service's built-in sandbox, and how to reach it from the command line.
    assert "GHL_API_URL=http://127.0.0.1:8000/sandbox/ghl" in text
    assert_no_traceback(result)


# --- OAuth installations and GHL's failures (respx) ----------------------------------------------


@pytest.fixture
def oauth_env(cli_env: dict[str, str], database_url: str) -> dict[str, str]:  # noqa: F811
    run(_empty(database_url))
    return {
        **cli_env,
        "DATABASE_URL": database_url,
        "WIZESYNC_ENV": "test",
        "GHL_API_URL": REAL_API,
        "GHL_CLIENT_ID": CLIENT_ID,
        "GHL_CLIENT_SECRET": CLIENT_SECRET,
        "GHL_REDIRECT_URI": REDIRECT_URI,
        "TOKEN_ENCRYPTION_KEY": KEY_OLD,
    }


def seed_installs(database_url: str, *locations: str) -> None:
    from tests.ghl.kit import seed_location

    async def seed() -> None:
        engine = create_engine(database_url)
        try:
            for location in locations:
                await seed_location(
                    create_sessionmaker(engine),
                    TokenCipher([KEY_OLD]),
                    location_id=location,
                    access=f"at-{location}",
                    refresh=f"rt-{location}",
                )
        finally:
            await engine.dispose()

    run(seed())


def provider_doc(location: str, name: str) -> dict[str, Any]:
    return {
        "_id": "65cb47dda50f4f13ced4b870",
        "altId": location,
        "altType": "location",
        "title": name.title(),
        "route": name,
        "provider": "authorize-net",
        "description": "d",
        "imageUrl": "https://example.com/i.png",
        "createdAt": "2026-11-27T10:00:00.000Z",
        "updatedAt": "2026-11-27T10:00:00.000Z",
    }


@respx.mock
def test_list_covers_every_installed_location_and_names_a_missing_scope(
    oauth_env, database_url
) -> None:
    seed_installs(database_url, LOCATION, LOCATION_2)

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer at-{request.url.params['altId']}"
        assert request.headers["Version"] == "2021-07-28"
        if request.url.params["altId"] == LOCATION:
            return httpx.Response(200, json={"providers": [provider_doc(LOCATION, "west-pay")]})
        return httpx.Response(
            401, json={"statusCode": 401, "message": "The token is not authorized for this scope."}
        )

    route = respx.get(f"{REAL_API}{WHITELABEL}").mock(side_effect=answer)
    result = run_cli(oauth_env, "ghl", "providers", "list")
    assert result.exit_code == 1
    text = words(result)
    assert "west-pay" in text and LOCATION in text
    assert (
        f"✗ location {LOCATION_2}: the token is not allowed to use this endpoint: it needs "
        "the scope payments/integration.readonly"
    ) in text
    assert route.call_count == 2
    assert "at-" not in text  # no token in the output
    assert_no_traceback(result)


@respx.mock
def test_a_register_whose_answer_is_lost_says_to_look_before_trying_again(
    oauth_env, database_url
) -> None:
    seed_installs(database_url, LOCATION)
    respx.get(f"{REAL_API}{WHITELABEL}").mock(
        return_value=httpx.Response(200, json={"providers": []})
    )
    created = respx.post(f"{REAL_API}{WHITELABEL}").mock(side_effect=httpx.ReadTimeout("slow"))
    result = run_cli(oauth_env, "ghl", "providers", "register", "--location", LOCATION, *GOOD)
    assert result.exit_code == 1
    text = words(result)
    assert "GHL did not confirm the registration" in text
    assert f"check with `wizesync ghl providers list --location {LOCATION}`" in text
    assert created.call_count == 1  # a create is never sent twice blindly
    assert_no_traceback(result)


def test_oauth_mode_with_nothing_installed_says_how_to_install(oauth_env) -> None:
    result = run_cli(oauth_env, "ghl", "providers", "list")
    assert result.exit_code == 1
    assert "no GHL location is installed yet" in words(result)
    assert "wizesync ghl install-url" in words(result)


def run_cli_input(env: dict[str, str], text: str, *args: str) -> Any:
    from typer.testing import CliRunner

    from wizesync.cli import app

    return CliRunner().invoke(app, list(args), env=env, input=text)
