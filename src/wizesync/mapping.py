"""The YAML field mapping (`MAPPING_FILE`): where orders go in GHL and how values translate.

Validated at start-up; every error names the field (`products.JOB-BOOST-30.price_id: ...`).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

GhlId = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
WizehirePaymentStatus = Literal[
    "pending", "paid", "partially_refunded", "refunded", "failed", "cancelled"
]


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the file and each bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Locations(_Strict):
    default: GhlId | None = None
    accounts: dict[str, GhlId] = Field(default_factory=dict)

    def for_account(self, account_id: str) -> str | None:
        return self.accounts.get(account_id, self.default)


class Product(_Strict):
    price_id: GhlId
    product_id: GhlId
    # The GHL price's currency, when given: `wizesync mapping check --online` compares it.
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)] | None = (
        None
    )


class Orders(_Strict):
    strategy: Literal["match_only", "match_or_invoice", "invoice"] = "match_or_invoice"
    match_window_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 30


class Fulfillment(_Strict):
    notify_customer: bool = False
    carrier: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "Wizehire"
    tracking_url: str = "https://app.wizehire.com/orders/{order_id}"

    @field_validator("tracking_url")
    @classmethod
    def _only_order_id_placeholder(cls, value: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if names - {"order_id"}:
            raise ValueError(f"only {{order_id}} may be used, not {sorted(names - {'order_id'})}")
        return value

    def tracking_url_for(self, order_id: str) -> str:
        return self.tracking_url.format(order_id=order_id)


ExecutorName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
# gateway name -> {"<field>_env": "<ENVIRONMENT VARIABLE>"}: credentials are named, never written.
GatewayCredentials = dict[ExecutorName, dict[str, EnvName]]


class Refunds(_Strict):
    # Which names exist (gateways are plug-ins) is checked where the services are built.
    executor: ExecutorName = "auto"
    # "default" or a GHL location id -> its gateways' credentials.
    gateways: dict[str, GatewayCredentials] = Field(default_factory=dict)

    @field_validator("gateways")
    @classmethod
    def _credentials_by_environment_name(
        cls, value: dict[str, GatewayCredentials]
    ) -> dict[str, GatewayCredentials]:
        for where, gateways in value.items():
            for gateway, fields in gateways.items():
                wrong = sorted(f for f in fields if not f.endswith("_env"))
                if wrong:
                    raise ValueError(
                        f"{where}.{gateway}: {', '.join(wrong)}: credentials are named by "
                        "environment variable (fields ending in _env), never written here"
                    )
        return value

    def credential_names(self, location_id: str, gateway: str) -> dict[str, str] | None:
        """The environment variable names for `gateway` at this location (its own block,
        else `default`); None when neither names any."""
        for where in (location_id, "default"):
            names = self.gateways.get(where, {}).get(gateway)
            if names is not None:
                return dict(names)
        return None


class Mapping(_Strict):
    locations: Locations = Field(default_factory=Locations)
    products: dict[str, Product] = Field(default_factory=dict)
    orders: Orders = Field(default_factory=Orders)
    fulfillment: Fulfillment = Field(default_factory=Fulfillment)
    # GHL transaction status -> Wizehire payment_status
    payment_status: dict[str, WizehirePaymentStatus] = Field(
        default_factory=lambda: {"succeeded": "paid", "failed": "failed", "refunded": "refunded"}
    )
    refunds: Refunds = Field(default_factory=Refunds)

    def location_for(self, account_id: str, explicit: str | None = None) -> str | None:
        """The order's own `ghl_location_id`, else the account's, else the default."""
        return explicit or self.locations.for_account(account_id)


def load_mapping(path: str | None, *, default_location: str | None = None) -> Mapping:
    """The mapping in `path`, or the built-in defaults (routing to `default_location`)."""
    if not path:
        return Mapping(locations=Locations(default=default_location))
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise MappingError(f"mapping file {path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping file {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError(f"mapping file {path}: the top level must be a mapping of sections")
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: "
            f"{str(err['msg']).removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        ]
        raise MappingError(f"mapping file {path}: " + "; ".join(problems)) from None
    if mapping.locations.default is None and default_location:
        mapping = mapping.model_copy(
            update={
                "locations": Locations(
                    default=default_location, accounts=mapping.locations.accounts
                )
            }
        )
    return mapping
