"""RFC 9457 problem details: every error the service answers with, and nothing else.

Expected failures raise `Problem` (it carries its status); anything else is a bug and answers a
plain 500 without a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from wizesync.db.errors import is_db_unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}

    def content(self) -> dict[str, Any]:
        """The problem+json body (also rendered by the raw webhook path, `inbox/asgi.py`)."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.content(), status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON
        )


def db_unavailable() -> Problem:
    return Problem(
        503,
        "Service Unavailable",
        "the database is not answering; retry later",
        headers={"Retry-After": "5"},
    )


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return Problem(
            exc.status_code, _title(exc.status_code), str(exc.detail), headers=exc.headers
        ).response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
        ]
        return Problem(
            422, "Unprocessable Content", "the request is invalid", errors=errors
        ).response()

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        return problem_for_error(exc, request.method, request.url.path).response()

    # Registered per class so Starlette's ExceptionMiddleware answers them (a bare `Exception`
    # handler would answer too, but re-raise into the server).
    for cls in (SQLAlchemyError, OSError, TimeoutError):
        app.add_exception_handler(cls, _database)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return internal_error().response()


def internal_error() -> Problem:
    return Problem(500, "Internal Server Error", "an unexpected error occurred")


def problem_for_error(
    exc: Exception, method: str, path: str, *, unavailable: bool | None = None
) -> Problem:
    """What an unexpected exception answers, logged: 503 + Retry-After when the database is not
    answering (`unavailable` overrides the guess for driver errors the caller classified), a
    plain 500 otherwise. Shared by the exception handlers and the raw webhook path."""
    if unavailable is None:
        unavailable = is_db_unavailable(exc)
    if unavailable:
        log.warning("database unavailable on %s: %s", path, type(exc).__name__)
        return db_unavailable()
    if isinstance(exc, (SQLAlchemyError, OSError, TimeoutError)):
        log.error("database error on %s %s", method, path, exc_info=exc)
    else:
        log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return internal_error()


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
