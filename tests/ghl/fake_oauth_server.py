"""A tiny real HTTP server playing GHL's OAuth endpoints, for tests that span processes.

It behaves like GHL where it matters: refresh tokens are single use (a reused one answers
`invalid_grant`), every refresh issues a new pair, a paused location answers "Location is not
active" and keeps its refresh token valid. Each refresh is slow (`latency`) so that two
processes refreshing at once would both get through before either finished: the counters then
show it. Runs on a thread (stdlib `ThreadingHTTPServer`), so it keeps answering while the test's
event loop waits.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Subject:
    user_type: str  # Location | Company
    location_id: str | None
    company_id: str


@dataclass
class FakeOAuthState:
    latency: float = 0.3
    refresh_calls: int = 0  # refresh_token grants that reached us
    refreshes_granted: int = 0
    refreshes_rejected: int = 0
    location_token_calls: int = 0
    refresh_tokens: dict[str, Subject] = field(default_factory=dict)  # live ones
    access_tokens: dict[str, Subject] = field(default_factory=dict)
    inactive_locations: set[str] = field(default_factory=set)
    codes: dict[str, Subject] = field(default_factory=dict)  # authorization codes, single use
    issued_access: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seed(self, subject: Subject) -> tuple[str, str]:
        """A live pair for `subject`, as if installed earlier."""
        with self.lock:
            return self._issue(subject)

    def _issue(self, subject: Subject) -> tuple[str, str]:
        access = "at_" + secrets.token_hex(12)
        refresh = "rt_" + secrets.token_hex(12)
        self.access_tokens[access] = subject
        self.refresh_tokens[refresh] = subject
        self.issued_access.append(access)
        return access, refresh


def _answer(subject: Subject, access: str, refresh: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 86399,
        "scope": "payments/orders.readonly invoices.write",
        "userType": subject.user_type,
        "companyId": subject.company_id,
        "userId": "user0000000000000000001",
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    if subject.location_id:
        body["locationId"] = subject.location_id
    return body


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest output stays readable

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        state = self.server.state
        if self.path.endswith("/oauth/token") and form.get("grant_type") == "refresh_token":
            self._refresh(state, form.get("refresh_token", ""))
        elif self.path.endswith("/oauth/token") and form.get("grant_type") == "authorization_code":
            with state.lock:
                subject = state.codes.pop(form.get("code", ""), None)
                pair = state._issue(subject) if subject else None
            if subject is None or pair is None:
                self._send(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "Invalid grant: authorization code is invalid",
                    },
                )
            else:
                self._send(200, _answer(subject, *pair))
        elif self.path.endswith("/oauth/locationToken"):
            self._location_token(state, form)
        else:
            self._send(
                400,
                {"error": "unsupported_grant_type", "error_description": "not played by this fake"},
            )

    def _refresh(self, state: FakeOAuthState, refresh: str) -> None:
        with state.lock:
            state.refresh_calls += 1
            subject = state.refresh_tokens.get(refresh)
            if subject is not None and subject.location_id in state.inactive_locations:
                status, body = (
                    400,
                    {
                        "statusCode": 400,
                        "error": "Bad Request",
                        "error_description": "Location is not active",
                    },
                )
            elif subject is None:
                state.refreshes_rejected += 1
                status, body = (
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "Invalid grant: refresh token is invalid",
                    },
                )
            else:
                del state.refresh_tokens[refresh]  # single use: dead from now on
                state.refreshes_granted += 1
                access, new_refresh = state._issue(subject)
                status, body = 200, _answer(subject, access, new_refresh)
        time.sleep(state.latency)  # outside the lock: a racing second refresh gets in meanwhile
        self._send(status, body)

    def _location_token(self, state: FakeOAuthState, form: dict[str, str]) -> None:
        bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        with state.lock:
            state.location_token_calls += 1
            agency = state.access_tokens.get(bearer)
            if agency is None or agency.user_type != "Company":
                status, body = (
                    401,
                    {"statusCode": 401, "message": "Invalid token: access token is invalid"},
                )
            else:
                subject = Subject("Location", form["locationId"], form["companyId"])
                access = "at_" + secrets.token_hex(12)
                state.access_tokens[access] = subject
                state.issued_access.append(access)
                status, body = 200, _answer(subject, access, None)
        time.sleep(state.latency)
        self._send(status, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeOAuthState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeOAuthServer:
    def __init__(self, latency: float = 0.3) -> None:
        self.state = FakeOAuthState(latency=latency)
        self._server = _Server(self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="fake GHL OAuth"
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeOAuthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
