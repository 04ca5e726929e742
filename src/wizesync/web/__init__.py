"""Browser pages: the login session and the server-rendered pages an operator opens.

- `auth.py`: `require_admin` (`AdminDep`), the ONE dependency for operator routes: the admin
  bearer token or the session cookie; never a token in a URL.
- `session.py`: the signed session cookie and the login form's CSRF cookie.
- `login.py`: `/login`, `/logout`.
- `ghl_oauth.py`: `/oauth/ghl/install`, `/oauth/ghl/callback` (installing the GHL app behind the
  login; mounted by `app.py`).
- `reports.py`: `/reports/reconciliation[/{id}[.csv]]`.
- `pages.py`: Jinja2 rendering and the security headers of every page; `templates/`, `static/`.
The revenue page itself is `wizesync.insights.routes` (`/insights`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from wizesync.web.auth import LoginRequired
from wizesync.web.pages import SECURITY_HEADERS, STATIC_DIR


def install(app: FastAPI) -> None:
    """Mount the pages, the login, the stylesheet and the login redirect on `app`."""
    from wizesync.insights.routes import router as insights_router
    from wizesync.web.login import router as login_router
    from wizesync.web.reports import router as reports_router

    @app.exception_handler(LoginRequired)
    async def _login_required(_: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(exc.location(), status_code=303, headers=SECURITY_HEADERS)

    app.include_router(login_router)
    app.include_router(insights_router)
    app.include_router(reports_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
