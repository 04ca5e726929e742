"""Contacts (apps/contacts.json): upsert, advanced search and the duplicate (by email) lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from wizesync.ghl.models.base import GhlId, GhlModel, GhlRequest


class UpsertContact(GhlRequest):
    """UpsertContactDto. GHL finds the contact by email or phone (per the location's "Allow
    Duplicate Contact" setting), so one of them is required here."""

    location_id: GhlId | None = None  # filled by the client from the call's location
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    website: str | None = None
    timezone: str | None = None
    tags: list[str] | None = None
    source: str | None = None
    custom_fields: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _needs_an_identifier(self) -> UpsertContact:
        if not (self.email or self.phone):
            raise ValueError("an upsert needs an email or a phone to find the contact by")
        return self


class SearchContacts(GhlRequest):
    """SearchBodyV2DTO (the spec leaves it open; these are the documented advanced-search keys)."""

    location_id: GhlId | None = None
    query: str | None = None
    filters: list[dict[str, Any]] | None = None
    page: int | None = Field(None, ge=1)
    page_limit: int = Field(20, ge=1, le=500)


class Contact(GhlModel):
    """GetContectByIdSchema (sic) and search results."""

    id: str
    location_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    company_name: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: str | None = None
    date_added: datetime | None = None
    date_updated: datetime | None = None


class UpsertContactResult(GhlModel):
    new: bool | None = None
    contact: Contact
    trace_id: str | None = None


class ContactSearchResult(GhlModel):
    contacts: list[Contact] = Field(default_factory=list)
    total: int | None = None


class DuplicateContactResult(GhlModel):
    """`GET /contacts/search/duplicate` (undocumented answer): `{contact}` or `{contact: null}`."""

    contact: Contact | None = None
