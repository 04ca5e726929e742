"""The webhooks' one adapter: ASGI messages in, `inbox/webhooks.py`'s answer out.

A webhook is the service's hot path, and most of its CPU went to the framework around it
(FastAPI's middleware layers, routing, dependency and response machinery), not to the work. So
the app (`app.WizesyncApp`) hands `/webhooks/wizehire` and `/webhooks/ghl` to `serve_webhook`
before any of that; everything else stays FastAPI. This module only reads the headers and the
body from ASGI messages and writes the answer (JSON rendered as Starlette's JSONResponse renders
it), mapping errors as the app's exception handlers do (`problems.py`); the checks and answers
are `inbox/webhooks.py`'s.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope, Send

from wizesync.inbox.webhooks import (
    WEBHOOKS,
    Acceptor,
    Answer,
    check_headers,
    client_disconnected,
    too_large,
)
from wizesync.problems import PROBLEM_JSON, Problem, problem_for_error
from wizesync.state import AppState


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name; the first of repeated ones, as Starlette's `get`."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


async def _read_body(receive: Receive, source: str, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise client_disconnected(source)
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(source, limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def render(content: Any) -> bytes:
    """JSON exactly as Starlette's JSONResponse renders it."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def _send(
    send: Send,
    status: int,
    content: dict[str, Any],
    media_type: str,
    headers: dict[str, str] | None,
) -> None:
    body = render(content)
    raw = [(b"content-length", str(len(body)).encode()), (b"content-type", media_type.encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def webhook_for(scope: Scope) -> tuple[str, Acceptor] | None:
    """The webhook an HTTP request's path names (behind a proxy's `root_path` too), or None."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return WEBHOOKS.get(path)


async def _send_problem(send: Send, problem: Problem) -> None:
    await _send(send, problem.status, problem.content(), PROBLEM_JSON, problem.headers)


async def serve_webhook(
    scope: Scope, receive: Receive, send: Send, source: str, accept: Acceptor
) -> None:
    """Answer one request to a webhook's path; never raises (every error is problem+json)."""
    if scope["method"] != "POST":
        allow = {"Allow": "POST"}
        await _send_problem(
            send, Problem(405, "Method Not Allowed", "Method Not Allowed", headers=allow)
        )
        return
    try:
        state: AppState = scope["app"].state.wizesync
        headers = _headers(scope)
        limit = state.settings.webhook_max_body_bytes
        check_headers(source, headers, limit)
        body = await _read_body(receive, source, limit)
        answer: Answer = await accept(state, headers, body)
    except Problem as problem:
        await _send_problem(send, problem)
        return
    except Exception as exc:  # a bug or the database: 503 or 500, as the exception handlers
        await _send_problem(send, problem_for_error(exc, scope["method"], scope["path"]))
        return
    await _send(send, answer.status, answer.content, answer.media_type, answer.headers)
