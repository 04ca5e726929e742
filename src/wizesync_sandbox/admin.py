"""The control plane, `/_sandbox/...`: state, reset, config, clock, faults and the webhook outbox.
The GHL and Wizehire specific parts are in `admin_ghl.py` and `admin_wizehire.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ValidationError

from wizesync_sandbox.defaults import seed_defaults
from wizesync_sandbox.faults import FaultRule

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox


class ResetIn(BaseModel):
    seed: bool = False


class ClockIn(BaseModel):
    advance_seconds: float = 0
    freeze: bool | None = None
    reset: bool = False


# Knobs that hold secrets: set through PATCH, never read back (the sandbox may run inside a
# development service whose Wizehire secret is a real one).
SECRET_KNOBS = frozenset({"wizehire_secret", "ghl_client_secret", "wizehire_api_key"})


def public_config(config: Any) -> dict[str, Any]:
    """The config as the control plane shows it: each secret only as set or not."""
    shown = config.model_dump()
    for name in SECRET_KNOBS & shown.keys():
        shown[name] = "<set>" if shown[name] else None
    return shown


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/_sandbox", tags=["sandbox control plane"])

    @api.get("/state")
    async def state(location_id: str | None = None) -> dict[str, Any]:
        """Everything the sandbox holds: GHL data, tokens, limits, faults, webhooks, Wizehire."""
        return sb.dump(location_id)

    @api.post("/reset")
    async def reset(body: ResetIn | None = None) -> dict[str, Any]:
        """Forget all data, tokens, limits, faults, webhooks and recorded calls."""
        await sb.outbox.drain()
        sb.reset()
        seeded = seed_defaults(sb) if body and body.seed else None
        return {"reset": True, "seeded": seeded}

    @api.get("/config")
    async def get_config() -> dict[str, Any]:
        """The knobs; secrets show only as `<set>`."""
        return public_config(sb.config)

    @api.patch("/config")
    async def patch_config(changes: dict[str, Any]) -> dict[str, Any]:
        """Change knobs at run time, e.g. `{"ghl_rate_limit_max": 5, "webhooks": "hold"}`."""
        try:
            merged = type(sb.config).model_validate({**sb.config.model_dump(), **changes})
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False)) from None
        for name in changes:
            setattr(sb.config, name, getattr(merged, name))
        return public_config(sb.config)

    @api.post("/clock")
    async def clock(body: ClockIn) -> dict[str, Any]:
        """Move the sandbox's clock (token expiry, rate-limit windows, createdAt) or freeze it."""
        if body.reset:
            sb.clock.reset()
        if body.freeze is True:
            sb.clock.freeze()
        elif body.freeze is False:
            sb.clock.unfreeze()
        if body.advance_seconds:
            sb.clock.advance(body.advance_seconds)
        return sb.clock.describe()

    # --- faults ----------------------------------------------------------------------------------
    @api.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return {
            "rules": [r.model_dump() for r in sb.faults.rules],
            "applied": list(sb.faults.applied),
        }

    @api.post("/faults", status_code=201)
    async def add_fault(rule: FaultRule) -> dict[str, Any]:
        """e.g. `{"path": "/ghl/payments/orders/*/fulfillments", "method": "POST",
        "status": 503, "phase": "after", "times": 1}` or `{"path": "/ghl/*", "rate": 0.33,
        "status": 500}` or `{"path": "/wizehire/v1/*", "timeout": true}`."""
        return sb.faults.add(rule).model_dump()

    @api.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        sb.faults.rules.clear()
        return {"rules": []}

    @api.delete("/faults/{rule_id}")
    async def remove_fault(rule_id: str) -> dict[str, Any]:
        if not sb.faults.remove(rule_id):
            raise HTTPException(404, f"no fault {rule_id}")
        return {"removed": rule_id}

    # --- webhook outbox --------------------------------------------------------------------------
    @api.get("/webhooks")
    async def list_webhooks(
        source: str | None = None, status: str | None = None, type: str | None = None
    ) -> dict[str, Any]:
        """Every webhook the sandbox made, in order: held, pending, delivered, failed, skipped."""
        return {
            "data": [
                d.public() for d in sb.outbox.listing(source=source, status=status, type_=type)
            ]
        }

    @api.post("/webhooks/drain")
    async def drain() -> dict[str, Any]:
        """Wait until every background delivery has finished."""
        await sb.outbox.drain()
        return {"pending": len(sb.outbox.listing(status="pending"))}

    @api.post("/webhooks/{delivery_id}/send")
    async def send(delivery_id: str) -> dict[str, Any]:
        """Deliver a held webhook now, or deliver one again (same id and body: a duplicate)."""
        delivery = sb.outbox.find(delivery_id)
        if delivery is None:
            raise HTTPException(404, f"no webhook {delivery_id}")
        return (await sb.outbox.deliver(delivery)).public()

    return api
