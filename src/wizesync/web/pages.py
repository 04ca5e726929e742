"""Rendering server-side pages: Jinja2 (autoescaped) templates and the headers every page carries.

Pages load nothing from elsewhere and run no script: the Content-Security-Policy allows this
site's stylesheet and images only, forms post only here, and no site may frame them. Figures are
never cached by the browser or a proxy (`no-store`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from wizesync import __version__
from wizesync.insights.figures import money_str

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _money(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        return money_str(Decimal(str(value)))
    except ArithmeticError:
        return str(value)


def _when(value: datetime | str | None) -> str:
    """A moment (or its ISO text) as `2026-12-04 17:48 UTC`."""
    if value is None or value == "":
        return ""
    moment: datetime
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = _money
_env.filters["when"] = _when
_env.globals["version"] = __version__


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    html = _env.get_template(template).render({"request": request, **context})
    return HTMLResponse(
        html, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
    )
