"""GHL webhook events: the few fields the service relies on; everything else is kept as sent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

GhlId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    type: str
    timestamp: datetime | None = None
    webhook_id: str | None = Field(None, alias="webhookId")


class OrderEvent(_Event):
    """OrderCreate, OrderStatusUpdate."""

    id: GhlId = Field(alias="_id")
    location_id: GhlId | None = Field(None, alias="locationId")
    alt_id: GhlId | None = Field(None, alias="altId")
    status: str | None = None

    @property
    def ordering_key(self) -> str:
        return f"ghl:order:{self.id}"


class InvoiceEvent(_Event):
    """InvoicePaid, InvoicePartiallyPaid, InvoiceVoid, InvoiceCreate, InvoiceUpdate."""

    id: GhlId = Field(alias="_id")
    alt_id: GhlId | None = Field(None, alias="altId")
    status: str | None = None

    @property
    def ordering_key(self) -> str:
        return f"ghl:invoice:{self.id}"


class AppInstallEvent(_Event):
    """INSTALL, UNINSTALL: an install is per location, or per company for agency installs."""

    app_id: GhlId = Field(alias="appId")
    location_id: GhlId | None = Field(None, alias="locationId")
    company_id: GhlId | None = Field(None, alias="companyId")

    @property
    def ordering_key(self) -> str:
        return f"ghl:install:{self.location_id or self.company_id or self.app_id}"


_TIMESTAMP = TypeAdapter(datetime)


def delivery_timestamp(payload: Any) -> datetime | None:
    """The delivery's `timestamp`, for ANY event type (an old body of an unhandled type is as
    much a replay as a handled one); None when absent or unreadable."""
    if not isinstance(payload, dict) or payload.get("timestamp") is None:
        return None
    try:
        return _TIMESTAMP.validate_python(payload["timestamp"])
    except ValidationError:
        return None


GHL_EVENT_MODELS: dict[str, type[_Event]] = {
    "OrderCreate": OrderEvent,
    "OrderStatusUpdate": OrderEvent,
    "InvoicePaid": InvoiceEvent,
    "InvoicePartiallyPaid": InvoiceEvent,
    "InvoiceVoid": InvoiceEvent,
    "InvoiceCreate": InvoiceEvent,
    "InvoiceUpdate": InvoiceEvent,
    "INSTALL": AppInstallEvent,
    "UNINSTALL": AppInstallEvent,
}
