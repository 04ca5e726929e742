"""A person's visit, in a real browser: log in through the form, read `/insights` (figures equal
the JSON endpoint's), follow the unreconciled orders to the reconciliation report (its tabs equal
the admin API's counts), filter it by category, log out. Screenshots (desktop and phone widths)
are saved under the test's tmp_path; with `WIZESYNC_SCREENSHOTS=<dir>` they are also copied
there (how docs/img is made).

The service is `wizesync dev` (`make run`) in development mode with its built-in sandbox GHL and
Wizehire, its in-process worker syncing, on both databases. The history is real: Wizehire orders the
service synced, a paid Wizehire order it never heard of, GHL checkouts nobody linked, refunds and
renewals (tests/insights/seed.py), and a reconciliation run started through the admin API.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import CHROMIUM_ARGS
from tests.insights.seed import plant
from tests.support.processes import Spawner
from tests.support.waiting import eventually
from wizesync import samples
from wizesync.db.reconcile_models import CATEGORIES

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ADMIN_TOKEN = "browser-test-admin-token-5f1c9e"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = (
    "login",
    "insights",
    "insights-phone",
    "reconciliation-report",
    "reconciliation-filtered",
    "reconciliation-phone",
    "reconciliation-runs",
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _sync_orders_from_wizehire(http: httpx.AsyncClient, count: int) -> list[str]:
    """Wizehire sends `order.created` (through the sandbox, signed); the service syncs each to
    GHL (contact, invoice, payment, the order GHL makes of it, fulfillment) and tells Wizehire."""
    ids = [f"wh_ord_browser_{n}" for n in range(count)]
    for order_id in ids:
        sent = await http.post(
            "/sandbox/_sandbox/wizehire/events",
            json={"type": "order.created", "order": {"id": order_id}},
        )
        assert sent.status_code == 200, sent.text

    async def synced() -> bool:
        orders = (await http.get("/sandbox/_sandbox/wizehire/orders")).json()["data"]
        done = {o["id"] for o in orders if (o.get("ghl_sync") or {}).get("ghl_fulfillment_id")}
        return set(ids) <= done

    await eventually(synced, timeout=90, what="the service to sync Wizehire's orders to GHL")
    return ids


async def _reconcile(http: httpx.AsyncClient, since: datetime, until: datetime) -> dict[str, Any]:
    """A real run through the admin API; its JSON once done."""
    started = await http.post(
        "/admin/reconciliations",
        headers=BEARER,
        json={"since": _iso(since), "until": _iso(until), "heal": False},
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]

    async def finished() -> dict[str, Any] | None:
        run = (await http.get(f"/admin/reconciliations/{run_id}", headers=BEARER)).json()
        return run if run["status"] != "running" else None

    run = await eventually(finished, timeout=120, what="the reconciliation run to finish")
    assert run["status"] == "done", run
    return run


async def _cells(page: Any, table: str, key: str) -> list[str]:
    return await page.locator(
        f"table[data-table={table}] tr[data-key='{key}'] td.num"
    ).all_inner_texts()


async def test_operator_logs_in_reads_insights_and_the_report(
    database_url: str,
    engine: Any,
    chromium_path: str,
    spawner: Spawner,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright

    _, base = await spawner.server(
        database_url,
        command="dev",
        WIZESYNC_ENV="development",
        ADMIN_TOKEN=ADMIN_TOKEN,
        POLL_INTERVAL_SECONDS="3600",
    )
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        start = datetime.now(UTC) - timedelta(minutes=5)
        await _sync_orders_from_wizehire(http, 2)
        unsent = samples.wizehire_order("wh_ord_browser_never_sent")
        seeded = await http.post("/sandbox/_sandbox/wizehire/orders", json=unsent)
        assert seeded.status_code == 201, seeded.text
        await plant(http, prefix="/sandbox", second_location=False)
        clock = (await http.get("/sandbox/_sandbox/state")).json()["clock"]
        end = datetime.fromisoformat(str(clock["now"]).replace("Z", "+00:00")) + timedelta(days=1)
        run = await _reconcile(http, start, end)
        run_id = run["id"]
        assert run["counts"]["matched"] >= 2, run["counts"]
        assert run["counts"]["missing_in_ghl"] == 1, run["counts"]
        assert run["counts"]["missing_in_wizehire"] > 0, run["counts"]

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport=DESKTOP)
                page = await context.new_page()
                urls: list[str] = []
                page.on("request", lambda request: urls.append(request.url))

                # Not logged in: the page sends the browser to the login form.
                await page.goto(f"{base}/insights")
                assert re.search(r"/login\?next=/insights$", page.url), page.url
                await page.screenshot(path=tmp_path / "login.png")
                await page.fill("#token", ADMIN_TOKEN)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{base}/insights")
                cookies = {c["name"]: c for c in await context.cookies()}
                assert cookies["wizesync_session"]["httpOnly"]
                assert cookies["wizesync_session"]["sameSite"] == "Lax"

                # Filter to a window holding everything (the sandbox clock ran ~10 days on).
                since = start.date().isoformat()
                await page.fill("input[name=since]", since)
                await page.fill("input[name=until]", end.date().isoformat())
                await page.select_option("select[name=interval]", "day")
                await page.click("form.filters button[type=submit]")
                await page.wait_for_load_state()
                assert "since=" + since in page.url
                json_href = await page.get_attribute("a[href^='/insights/revenue?']", "href")
                assert json_href
                body = (await http.get(json_href, headers=BEARER)).json()
                assert body["currency"] == "USD" and body["totals"]["orders"] > 0
                for section in ("totals", "subscriptions", "unreconciled"):
                    for key, value in body[section].items():
                        shown = await page.inner_text(f"[data-figure='{section}.{key}']")
                        assert shown == str(value), (section, key, shown, value)
                for row in body["by_product"]:
                    assert await _cells(page, "by_product", row["sku"] or "") == [
                        row["gross"],
                        row["refunds"],
                        row["net"],
                        str(row["orders"]),
                    ], row
                for row in body["by_location"]:
                    assert await _cells(page, "by_location", row["location_id"]) == [
                        row["gross"],
                        row["refunds"],
                        row["net"],
                        str(row["orders"]),
                    ], row
                bars = page.locator("svg.chart rect.gross:not(.legend)")
                assert await bars.count() == len(body["series"])
                await page.screenshot(path=tmp_path / "insights.png", full_page=True)
                await page.set_viewport_size(PHONE)
                await page.screenshot(path=tmp_path / "insights-phone.png", full_page=True)
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"the page is {overflow}px wider than a phone"
                await page.set_viewport_size(DESKTOP)

                # The unreconciled orders lead to the report; its tabs are the run's counts.
                await page.click(f"a[href='/reports/reconciliation/{run_id}']")
                await page.wait_for_url(f"{base}/reports/reconciliation/{run_id}")
                for category in CATEGORIES:
                    tab = page.locator(f"nav.tabs a[data-category='{category}'] .count")
                    assert await tab.inner_text() == str(run["counts"][category]), category
                rows = page.locator("table[data-table=items] tbody tr")
                assert await rows.count() == min(100, sum(run["counts"].values()))
                await page.screenshot(path=tmp_path / "reconciliation-report.png", full_page=True)
                await page.click("nav.tabs a[data-category='missing_in_wizehire']")
                await page.wait_for_url(re.compile(r".*category=missing_in_wizehire$"))
                shown = await rows.evaluate_all("rows => rows.map(r => r.dataset.category)")
                assert shown == ["missing_in_wizehire"] * run["counts"]["missing_in_wizehire"]
                listed = (
                    await http.get(
                        f"/admin/reconciliations/{run_id}",
                        headers=BEARER,
                        params={"category": "missing_in_wizehire"},
                    )
                ).json()
                ghl_ids = await page.locator(
                    "table[data-table=items] td[data-label='GHL order'] code"
                ).all_inner_texts()
                assert ghl_ids == [item["ghl_order_id"] for item in listed["items"]]
                await page.screenshot(path=tmp_path / "reconciliation-filtered.png", full_page=True)
                await page.set_viewport_size(PHONE)
                await page.screenshot(path=tmp_path / "reconciliation-phone.png", full_page=True)
                await page.set_viewport_size(DESKTOP)
                await page.goto(f"{base}/reports/reconciliation")
                await page.screenshot(path=tmp_path / "reconciliation-runs.png", full_page=True)

                # Log out: the session is gone, the pages send the browser to the form again.
                await page.click("form.logout button")
                await page.wait_for_url(f"{base}/login")
                await page.goto(f"{base}/insights")
                assert "/login?next=" in page.url
                assert not [u for u in urls if ADMIN_TOKEN in u]
                assert not [u for u in urls if not u.startswith(base)], "no external requests"
            finally:
                await browser.close()
    for name in SCREENSHOTS:
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    target = os.environ.get("WIZESYNC_SCREENSHOTS")
    if target and database_url.startswith("sqlite"):
        for name in SCREENSHOTS:
            shutil.copy(tmp_path / f"{name}.png", Path(target) / f"{name}.png")
