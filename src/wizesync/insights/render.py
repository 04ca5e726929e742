"""A `RevenueReport` as the contract's JSON, and the same figures as CSV.

CSV: one header, one row per figure set, the section in the first columns:
`currency, interval, section, key, gross, refunds, net, orders, active, mrr, amount`, where
section is `totals` (key empty), `series` (key = the period's first day), `by_product` (key = the
SKU, empty for no SKU), `by_location` (key = the location id), `subscriptions` (`active`, `mrr`)
and `unreconciled` (`orders`, `amount`). Columns a section has no figure for stay empty. Every
value is the JSON's string (or integer), so a spreadsheet filtered by section is the JSON's table.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from wizesync.insights.figures import Figures, RevenueReport, money_str

CSV_COLUMNS = (
    "currency",
    "interval",
    "section",
    "key",
    "gross",
    "refunds",
    "net",
    "orders",
    "active",
    "mrr",
    "amount",
)


def figures_json(figures: Figures) -> dict[str, Any]:
    return {
        "gross": money_str(figures.gross),
        "refunds": money_str(figures.refunds),
        "net": money_str(figures.net),
        "orders": len(figures.orders),
    }


def report_json(report: RevenueReport) -> dict[str, Any]:
    return {
        "currency": report.currency,
        "interval": report.interval,
        "totals": figures_json(report.totals),
        "series": [{"period": start.isoformat(), **figures_json(f)} for start, f in report.series],
        "by_product": [{"sku": sku, **figures_json(f)} for sku, f in report.by_product],
        "by_location": [{"location_id": loc, **figures_json(f)} for loc, f in report.by_location],
        "subscriptions": {"active": report.active_subscriptions, "mrr": money_str(report.mrr)},
        "unreconciled": {
            "orders": report.unreconciled_orders,
            "amount": money_str(report.unreconciled_amount),
        },
    }


def report_csv(report: RevenueReport) -> str:
    data = report_json(report)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    base = {"currency": data["currency"], "interval": data["interval"]}

    def row(section: str, key: str | None, **values: Any) -> None:
        writer.writerow({**base, "section": section, "key": key or "", **values})

    row("totals", None, **data["totals"])
    for entry in data["series"]:
        row("series", entry.pop("period"), **entry)
    for entry in data["by_product"]:
        row("by_product", entry.pop("sku"), **entry)
    for entry in data["by_location"]:
        row("by_location", entry.pop("location_id"), **entry)
    row("subscriptions", None, **data["subscriptions"])
    unreconciled = data["unreconciled"]
    row("unreconciled", None, orders=unreconciled["orders"], amount=unreconciled["amount"])
    return out.getvalue()
