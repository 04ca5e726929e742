"""The browser session: a signed, expiring cookie that stands for "this browser gave ADMIN_TOKEN".

Signed with itsdangerous (`URLSafeTimedSerializer`: HMAC-SHA1 over the payload and a timestamp,
checked with a max age): a small, long-kept library that does exactly this and nothing more, so
there is no server-side session table and every replica accepts the same cookie. The key is
`SESSION_SECRET`, else one derived from `ADMIN_TOKEN` (so a rotated token logs every browser out).
The payload holds no secret: the session's CSRF token and a fingerprint of the admin token it was
opened with (so rotating ADMIN_TOKEN ends sessions even when SESSION_SECRET is set).

Cookie flags: HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site POSTs), Path=/,
a Max-Age, and Secure with the `__Host-` name prefix in production (or `SESSION_COOKIE_SECURE`).

The login form has its own short-lived signed cookie (`login_csrf`), a double-submit token:
there is no session yet to hold a synchronizer token, and a forged cross-site login must fail.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from wizesync.config import Settings

LOGIN_CSRF_MAX_AGE = 3600
_SESSION_SALT = "wizesync.session"
_LOGIN_SALT = "wizesync.login-csrf"


@dataclass(frozen=True)
class AdminSession:
    csrf_token: str


class SessionCodec:
    """Opens, reads and clears sessions for one configuration; stateless, so build it per use."""

    def __init__(self, settings: Settings) -> None:
        if settings.admin_token is None:
            raise ValueError("sessions need ADMIN_TOKEN")
        admin = settings.admin_token.get_secret_value().encode()
        secret = (
            settings.session_secret.get_secret_value().encode()
            if settings.session_secret
            else hmac.new(admin, b"wizesync session signing key v1", hashlib.sha256).digest()
        )
        self._serializer = URLSafeTimedSerializer(secret, salt=_SESSION_SALT)
        self._login = URLSafeTimedSerializer(secret, salt=_LOGIN_SALT)
        self._fingerprint = hmac.new(secret, admin, hashlib.sha256).hexdigest()[:32]
        self.max_age = settings.session_max_age_seconds
        secure = settings.session_cookie_secure
        self.secure = settings.is_production if secure is None else secure
        self.cookie_name = "__Host-wizesync_session" if self.secure else "wizesync_session"
        self.login_cookie_name = "__Host-wizesync_login" if self.secure else "wizesync_login"

    # --- the session -----------------------------------------------------------------------------
    def open(self, response: Response) -> AdminSession:
        session = AdminSession(csrf_token=secrets.token_urlsafe(32))
        value = self._serializer.dumps({"csrf": session.csrf_token, "tk": self._fingerprint})
        response.set_cookie(
            self.cookie_name,
            value,
            max_age=self.max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
        return session

    def read(self, request: Request) -> AdminSession | None:
        value = request.cookies.get(self.cookie_name)
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        if not hmac.compare_digest(str(data.get("tk", "")), self._fingerprint):
            return None
        return AdminSession(csrf_token=data["csrf"])

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    # --- the login form's double-submit token ----------------------------------------------------
    def set_login_token(self, response: Response, token: str) -> None:
        """The form's hidden field holds `token`; this signed cookie holds it too."""
        response.set_cookie(
            self.login_cookie_name,
            self._login.dumps(token),
            max_age=LOGIN_CSRF_MAX_AGE,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def login_token_ok(self, request: Request, form_token: str | None) -> bool:
        value = request.cookies.get(self.login_cookie_name)
        if not value or not form_token:
            return False
        try:
            expected = self._login.loads(value, max_age=LOGIN_CSRF_MAX_AGE)
        except (BadSignature, SignatureExpired):
            return False
        return isinstance(expected, str) and same_secret(expected, form_token)

    def clear_login_token(self, response: Response) -> None:
        response.delete_cookie(
            self.login_cookie_name, path="/", secure=self.secure, httponly=True, samesite="strict"
        )


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison that accepts any text (compare_digest on str wants ASCII)."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )
