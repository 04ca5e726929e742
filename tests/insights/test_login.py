"""Browser login: the form, the session cookie's flags and signature, CSRF on every POST, the
redirect or 401 when not logged in, and no admin token in any URL."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from tests.conftest import _lifespan, make_settings
from tests.insights.conftest import ADMIN_TOKEN, InsightsKit
from wizesync.app import create_app
from wizesync.config import Settings
from wizesync.web.session import SessionCodec

pytestmark = pytest.mark.empty_sandbox
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    out = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            out[name] = cookie
    return out


async def _login(
    client: httpx.AsyncClient, token: str = ADMIN_TOKEN, next_path: str = "/insights"
) -> httpx.Response:
    form = await client.get("/login", params={"next": next_path})
    assert form.status_code == 200
    return await client.post(
        "/login", data={"token": token, "csrf_token": _csrf(form.text), "next": next_path}
    )


async def test_pages_redirect_to_login_and_api_answers_401(insights_kit: InsightsKit) -> None:
    client = insights_kit.client
    for path in ("/insights?interval=week", "/reports/reconciliation", "/reports/reconciliation/1"):
        response = await client.get(path, headers=HTML)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=/")
    assert (await client.get("/insights?interval=week", headers=HTML)).headers[
        "location"
    ] == "/login?next=/insights%3Finterval%3Dweek"
    for path in (
        "/insights/revenue",
        "/insights/revenue.csv",
        "/reports/reconciliation/1.csv",
        "/insights",
    ):
        response = await client.get(path)  # no Accept: text/html -> a program
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_login_sets_a_signed_httponly_samesite_session_and_redirects(
    insights_kit: InsightsKit,
) -> None:
    client = insights_kit.client
    form = await client.get("/login")
    login_cookie = _set_cookies(form)["wizesync_login"]["wizesync_login"]
    assert login_cookie["httponly"] and login_cookie["samesite"].lower() == "strict"
    assert "token" not in form.url.query.decode()
    response = await client.post(
        "/login",
        data={
            "token": ADMIN_TOKEN,
            "csrf_token": _csrf(form.text),
            "next": "/insights?interval=month",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/insights?interval=month"
    session = _set_cookies(response)["wizesync_session"]["wizesync_session"]
    assert session["httponly"] is True
    assert session["samesite"].lower() == "lax"
    assert session["path"] == "/"
    assert int(session["max-age"]) == Settings.model_fields["session_max_age_seconds"].default
    assert not session["secure"]  # development/test over http
    assert ADMIN_TOKEN not in session.value
    page = await client.get("/insights", headers=HTML)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    api = await client.get("/insights/revenue")  # the cookie works for the JSON too
    assert api.status_code == 200


async def test_wrong_token_is_refused_with_the_form_again(insights_kit: InsightsKit) -> None:
    client = insights_kit.client
    response = await _login(client, token="not-the-token")
    assert response.status_code == 401
    assert "That is not the token." in response.text
    assert "wizesync_session" not in _set_cookies(response)
    non_ascii = await _login(client, token="tökén-✓")
    assert non_ascii.status_code == 401
    assert (await client.get("/insights/revenue")).status_code == 401


async def test_login_without_the_forms_csrf_cookie_is_refused(insights_kit: InsightsKit) -> None:
    client = insights_kit.client
    form = await client.get("/login")
    token = _csrf(form.text)
    client.cookies.clear()  # a cross-site POST: the site's strict cookie is not sent
    response = await client.post("/login", data={"token": ADMIN_TOKEN, "csrf_token": token})
    assert response.status_code == 403
    assert "wizesync_session" not in _set_cookies(response)
    form = await client.get("/login")
    forged = await client.post("/login", data={"token": ADMIN_TOKEN, "csrf_token": "x" * 43})
    assert forged.status_code == 403


async def test_logout_needs_the_sessions_csrf_token(insights_kit: InsightsKit) -> None:
    client = insights_kit.client
    await _login(client)
    page = await client.get("/insights", headers=HTML)
    refused = await client.post("/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await client.get("/insights/revenue")).status_code == 200
    response = await client.post("/logout", data={"csrf_token": _csrf(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    cleared = _set_cookies(response)["wizesync_session"]["wizesync_session"]
    assert cleared["max-age"] == "0"
    client.cookies.clear()
    assert (await client.get("/insights/revenue")).status_code == 401


async def test_the_token_is_never_accepted_in_a_url(insights_kit: InsightsKit) -> None:
    client = insights_kit.client
    for params in (
        {"token": ADMIN_TOKEN},
        {"admin_token": ADMIN_TOKEN},
        {"access_token": ADMIN_TOKEN},
        {"authorization": f"Bearer {ADMIN_TOKEN}"},
    ):
        assert (await client.get("/insights/revenue", params=params)).status_code == 401
        assert (await client.get("/insights", params=params, headers=HTML)).status_code == 303
    # A GET of the login form with a token does not log in either.
    await client.get("/login", params={"token": ADMIN_TOKEN})
    assert (await client.get("/insights/revenue")).status_code == 401


async def test_no_page_puts_the_token_in_a_url(insights_kit: InsightsKit) -> None:
    client = insights_kit.client
    response = await _login(client)
    seen = [response.headers["location"]]
    for path in ("/insights", "/reports/reconciliation", "/login"):
        page = await client.get(path, headers=HTML)
        assert ADMIN_TOKEN not in page.text
        seen += re.findall(r'(?:href|action|src)="([^"]*)"', page.text)
        seen += [h for h in page.headers.get_list("location")]
    assert seen and not [url for url in seen if ADMIN_TOKEN in url]
    assert all(
        f.lower() != "get"
        for f in re.findall(
            r'<form method="(\w+)" action="/login"', (await client.get("/login")).text
        )
    )


async def test_bearer_header_still_works_and_garbage_headers_are_401(
    insights_kit: InsightsKit,
) -> None:
    client = insights_kit.client
    assert (await client.get("/insights/revenue", headers=insights_kit.bearer)).status_code == 200
    for header in (
        b"Bearer wrong",
        f"Basic {ADMIN_TOKEN}".encode(),
        ADMIN_TOKEN.encode(),
        b"Bearer",
        "Bearer tökén ✓".encode(),
        b"Bearer \xff\xfe",
    ):
        response = await client.get("/insights/revenue", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_open_redirects_are_refused(insights_kit: InsightsKit) -> None:
    client = insights_kit.client
    for target in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/logout",
    ):
        response = await _login(client, next_path=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/insights", target
        client.cookies.clear()


async def test_tampered_expired_or_rotated_sessions_are_refused(
    insights_kit: InsightsKit, database_url: str
) -> None:
    client = insights_kit.client
    await _login(client)
    value = client.cookies["wizesync_session"]
    client.cookies.set("wizesync_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert (await client.get("/insights/revenue")).status_code == 401
    # Signed by someone who does not know the key: refused.
    fake = URLSafeTimedSerializer(b"guess", salt="wizesync.session").dumps({"csrf": "x"})
    client.cookies.set("wizesync_session", fake)
    assert (await client.get("/insights/revenue")).status_code == 401
    # A session opened under the old ADMIN_TOKEN does not survive its rotation, even with a
    # SESSION_SECRET that stays the same.
    old = make_settings(database_url, admin_token="old-token", session_secret="s" * 40)
    new = make_settings(database_url, admin_token="new-token", session_secret="s" * 40)
    response = Response()
    SessionCodec(old).open(response)
    jar = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    cookie = jar["wizesync_session"].value
    scope = {"type": "http", "headers": [(b"cookie", f"wizesync_session={cookie}".encode())]}
    assert SessionCodec(old).read(Request(scope)) is not None
    assert SessionCodec(new).read(Request(scope)) is None


async def test_expired_session_is_refused(
    insights_kit: InsightsKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    client = insights_kit.client
    await _login(client)
    assert (await client.get("/insights/revenue")).status_code == 200
    later = time.time() + Settings.model_fields["session_max_age_seconds"].default + 5
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert (await client.get("/insights/revenue")).status_code == 401


async def test_production_cookie_is_secure_and_host_prefixed(
    database_url: str, engine: object
) -> None:
    settings = make_settings(
        database_url, admin_token=ADMIN_TOKEN, worker="off", session_cookie_secure=True
    )
    app = create_app(settings)
    async with (
        _lifespan(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://test"
        ) as client,
    ):
        response = await _login(client)
        assert response.status_code == 303
        cookies = _set_cookies(response)
        session = cookies["__Host-wizesync_session"]["__Host-wizesync_session"]
        assert session["secure"] and session["httponly"] and session["path"] == "/"
        assert "domain" not in {k for k, v in session.items() if v}
        assert (await client.get("/insights", headers=HTML)).status_code in (200, 503)


async def test_guessing_is_braked_per_client(
    insights_kit: InsightsKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wizesync.web import login

    brake = login.FailedLogins(max_failures=3, window_seconds=60)
    insights_kit.app.state.failed_logins = brake
    monkeypatch.setattr(login, "FAILED_LOGIN_PAUSE_SECONDS", 0)
    client = insights_kit.client
    for _ in range(3):
        assert (await _login(client, token="guess")).status_code == 401
    braked = await _login(client)  # even the right token waits out the window
    assert braked.status_code == 429
    assert 1 <= int(braked.headers["retry-after"]) <= 61
    assert "wizesync_session" not in _set_cookies(braked)
    assert brake.retry_after("127.0.0.1", now=1e12) == 0  # the window passes
    assert brake.retry_after("another-client") == 0
