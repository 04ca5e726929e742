"""The sandbox's knobs. All of them can be changed at run time through `PATCH /_sandbox/config`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wizesync.config import DEV_WIZEHIRE_SECRET

GHL_VERSIONS = ("2021-07-28", "v3")


class SandboxConfig(BaseModel):
    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    # --- fake GHL: rate limits (per location, like the real API) -------------------------------
    ghl_rate_limit_max: int = Field(100, ge=1)
    ghl_rate_limit_interval_ms: int = Field(10_000, ge=1)
    ghl_daily_limit: int = Field(200_000, ge=1)
    # GHL's 429 may or may not carry Retry-After (unconfirmed); both can be tested.
    ghl_retry_after: bool = False

    # --- fake GHL: OAuth ------------------------------------------------------------------------
    access_token_ttl_seconds: int = Field(86_399, ge=1)
    refresh_token_ttl_seconds: int = Field(365 * 86_400, ge=1)
    auth_code_ttl_seconds: int = Field(600, ge=1)
    # A dead refresh token answers `invalid_grant` with this status (real GHL: 400 or 401).
    invalid_grant_status: Literal[400, 401] = 400
    # When set, /oauth/token checks them; unset accepts any client.
    ghl_client_id: str | None = None
    ghl_client_secret: str | None = None

    # --- webhooks the sandbox sends to the service ---------------------------------------------
    service_url: str | None = "http://127.0.0.1:8000"
    # send: deliver on every state change; hold: keep them in the outbox until released; off: none
    webhooks: Literal["send", "hold", "off"] = "send"
    webhook_max_attempts: int = Field(3, ge=1, le=12)
    webhook_retry_seconds: float = Field(1.0, ge=0)
    webhook_timeout_seconds: float = Field(10.0, gt=0)

    # --- fake Wizehire --------------------------------------------------------------------------
    wizehire_secret: str = DEV_WIZEHIRE_SECRET
    # When set, the Wizehire API wants exactly this bearer key (or a client-credentials token);
    # unset, any non-empty bearer is accepted.
    wizehire_api_key: str | None = None
    wizehire_require_idempotency_key: bool = True

    # --- fault injection -----------------------------------------------------------------------
    fault_seed: int | None = None
