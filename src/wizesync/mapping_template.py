"""The commented mapping file: `mapping.example.yaml` and what `wizesync mapping init` writes.

One renderer for both, so the shipped example and a generated starting file say the same about
every key (a test keeps `mapping.example.yaml` equal to `render_example()`). Values are written
as JSON strings where they are free text: JSON is YAML, and quoting keeps ids like `1e5` or
`no` from turning into numbers or booleans.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from wizesync.ghl.catalog import CatalogLine

HEADER = """\
# wizesync mapping (MAPPING_FILE): where Wizehire orders go in GHL and how values translate.
# Check it:            wizesync mapping check <file>
# Check it against GHL: wizesync mapping check <file> --online   (every price exists, currency)
# GHL's products:      wizesync ghl catalog --location <GHL location id>
"""

LOCATIONS = """\

# Which GHL location (sub-account) an order goes to: the order's own `ghl_location_id`, else its
# Wizehire account's entry under `accounts`, else `default`. Without a default, an order of an
# account not listed goes dead (replayable once the mapping routes it).
locations:
  default: {default}
  accounts: {{}}
  # accounts:
  #   acct_42: "<another GHL location id>"   # Wizehire account id -> GHL location id
"""

PRODUCTS = """\

# Wizehire SKU -> the GHL price an order line becomes (and that price's product). Every SKU
# Wizehire sells must be here: an order with an unmapped SKU goes dead (replayable after a fix).
# `currency` (optional): the price's currency; `mapping check --online` compares it with GHL.
products:
"""

REST = """\

# How a Wizehire order becomes a GHL order (an order naming its `ghl_order_id` is always linked):
#   match_only        link the contact's GHL order of the same amount and currency created within
#                     match_window_minutes of the Wizehire order; never create one
#   match_or_invoice  link such an order if there is exactly one, else invoice (the default)
#   invoice           always create an invoice and record its payment: GHL makes the order
orders:
  strategy: match_or_invoice
  match_window_minutes: 30   # 1 to 10080 (a week)

# The fulfillment recorded on the GHL order once it exists.
fulfillment:
  notify_customer: false   # true: GHL emails the customer about it
  carrier: "Wizehire"      # shippingCarrier
  tracking_url: "https://app.wizehire.com/orders/{order_id}"   # only {order_id} is replaced

# GHL transaction status -> Wizehire payment_status (pending, paid, partially_refunded, refunded,
# failed, cancelled). Statuses not listed keep the built-in meaning (succeeded/paid -> paid, ...);
# unknown ones count as pending.
payment_status:
  succeeded: paid
  failed: failed
  refunded: refunded

# Refunds Wizehire asks for (`refund.requested`): who moves the money.
#   manual         Wizehire hears `manual_action_required` and Slack is told; a human refunds in
#                  GHL or the gateway and the poller settles it when GHL shows the refund
#   auto           the gateway the GHL transaction was paid through (paymentProviderType and
#                  chargeId), with the credentials named under `gateways`; manual where none fits
#   stripe, nmi, authorize_net   force one gateway
# A location whose payment has no gateway credentials here, or was paid offline, falls back to a
# human (`manual_action_required`, with the reason in words).
refunds:
  executor: auto
  # Credentials are NAMED here (environment variable names), never written: for every location
  # (`default`) or per GHL location id. `wizesync doctor` checks each named variable is set.
  gateways:
    default:
      stripe: {api_key_env: STRIPE_API_KEY}
    # "<GHL location id>":
    #   nmi: {security_key_env: NMI_SECURITY_KEY_LOC1}
    #   authorize_net:
    #     login_id_env: AUTHNET_LOGIN_ID
    #     transaction_key_env: AUTHNET_TRANSACTION_KEY
"""


@dataclass(frozen=True)
class MappedPrice:
    sku: str
    line: CatalogLine


def quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def sku_for(line: CatalogLine, several_prices: bool) -> str:
    """A readable placeholder SKU from GHL's names (the operator renames it to Wizehire's)."""
    name = f"{line.product_name} {line.price_name}" if several_prices else line.product_name
    slug = re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")
    return slug or line.price_id or line.product_id


def mapped_prices(lines: Iterable[CatalogLine]) -> list[MappedPrice]:
    """One entry per price (products without a price cannot be sold: left out), SKUs unique."""
    priced = [line for line in lines if line.price_id]
    per_product: dict[str, int] = {}
    for line in priced:
        per_product[line.product_id] = per_product.get(line.product_id, 0) + 1
    out: list[MappedPrice] = []
    seen: set[str] = set()
    for line in priced:
        sku = base = sku_for(line, per_product[line.product_id] > 1)
        n = 2
        while sku in seen:
            sku, n = f"{base}-{n}", n + 1
        seen.add(sku)
        out.append(MappedPrice(sku, line))
    return out


def _amount(amount: Decimal | None, currency: str | None) -> str:
    if amount is None:
        return "no amount"
    return f"{amount:.2f} {currency or ''}".strip()


def render(*, location_id: str, prices: list[MappedPrice], intro: str = "") -> str:
    parts = [HEADER, intro, LOCATIONS.format(default=quoted(location_id)), PRODUCTS]
    if not prices:
        parts.append("  {}\n")
    for mapped in prices:
        line = mapped.line
        what = f"{line.product_name} / {line.price_name}".strip(" /") or line.product_id
        detail = _amount(line.amount, line.currency)
        if line.recurring:
            detail += f", {line.recurring}"
        parts.append(f"  {quoted(mapped.sku)}:   # {what}: {detail}\n")
        parts.append(f"    price_id: {quoted(line.price_id or '')}\n")
        parts.append(f"    product_id: {quoted(line.product_id)}\n")
        if line.currency:
            parts.append(f"    currency: {line.currency}\n")
    parts.append(REST)
    return "".join(parts)


def render_init(location_id: str, lines: list[CatalogLine]) -> str:
    """What `wizesync mapping init --location` writes from the location's catalog."""
    intro = (
        f"#\n# Written by `wizesync mapping init` from the products of GHL location "
        f"{location_id}.\n# Rename each SKU below to the Wizehire SKU it sells, and delete "
        "the prices Wizehire does not sell.\n"
    )
    return render(location_id=location_id, prices=mapped_prices(lines), intro=intro)


def render_example() -> str:
    """`mapping.example.yaml`: placeholders where the ids of your GHL location go."""
    sample = [
        MappedPrice(
            "JOB-BOOST-30",
            CatalogLine(
                "<GHL product id>",
                "Job ad boost, 30 days",
                "<GHL price id>",
                "One-time",
                Decimal("149.00"),
                "USD",
                None,
            ),
        ),
        MappedPrice(
            "HIRING-PLAN-MONTHLY",
            CatalogLine(
                "<GHL product id of the plan>",
                "Hiring plan",
                "<GHL price id of the plan>",
                "Monthly",
                Decimal("99.00"),
                "USD",
                "every 1 month",
            ),
        ),
    ]
    intro = (
        "#\n# Copy it (cp mapping.example.yaml mapping.yaml), put your GHL ids in (or let\n"
        "# `wizesync mapping init --location <id>` write one from GHL) and set MAPPING_FILE.\n"
    )
    return render(location_id="<GHL location id>", prices=sample, intro=intro)
