"""A person's visit, in a real browser: log in through the form, read `/insights` (figures equal
the JSON endpoint's), follow the unreconciled orders to the reconciliation report, filter it by
category, log out. Screenshots (desktop and phone widths) are saved under the test's tmp_path;
with `WIZESYNC_SCREENSHOTS=<dir>` they are also copied there (how docs/img is made).

The service is `wizesync serve` in development mode with its built-in sandbox GHL (seeded with a
varied history through the sandbox's control plane) on both databases.
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
from wizesync.db import reconcile_repo
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.db.reconcile_models import CATEGORIES

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ADMIN_TOKEN = "browser-test-admin-token-5f1c9e"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PLANTED = {
    "missing_in_ghl": 2,
    "missing_in_wizehire": 1,
    "amount_mismatch": 1,
    "status_mismatch": 1,
    "fulfillment_missing": 1,
    "matched": 7,
}


async def _plant_run(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        sessionmaker = create_sessionmaker(engine)
        now = datetime.now(UTC)
        items = []
        for category, n in PLANTED.items():
            for i in range(n):
                ghl_side = category != "missing_in_ghl"
                wh_side = category != "missing_in_wizehire"
                items.append(
                    {
                        "order_key": f"k:{category}:{i}",
                        "category": category,
                        "wizehire_order_id": f"wh_ord_{1000 + i}_{category[:4]}"
                        if wh_side
                        else None,
                        "ghl_order_id": f"65b{i:021x}" if ghl_side else None,
                        "ghl_location_id": "SandboxLocation00001" if ghl_side else None,
                        "wizehire": {
                            "amount": "149.00",
                            "currency": "USD",
                            "status": "paid",
                            "payment_status": "paid"
                            if category != "status_mismatch"
                            else "pending",
                            "amount_refunded": "0",
                        }
                        if wh_side
                        else None,
                        "ghl": {
                            "amount": "139.00" if category == "amount_mismatch" else "149.00",
                            "currency": "USD",
                            "payment_status": "paid",
                            "amount_refunded": "0",
                            "fulfilled": category != "fulfillment_missing",
                        }
                        if ghl_side
                        else None,
                        "detail": _detail(category),
                        "healed": category == "missing_in_ghl",
                    }
                )
        async with sessionmaker() as session, session.begin():
            run = await reconcile_repo.create_run(
                session,
                trigger="scheduled",
                since=now - timedelta(days=7),
                until=now,
                heal=True,
                owner="browser-test",
                lease_seconds=60,
                fire_time=now.replace(hour=2, minute=0, second=0, microsecond=0),
            )
            assert run is not None
            await reconcile_repo.add_items(session, run, items)
            await reconcile_repo.finish_run(
                session,
                run,
                owner="browser-test",
                status="done",
                counts=await reconcile_repo.count_items(session, run),
            )
        return run
    finally:
        await engine.dispose()


def _detail(category: str) -> str:
    return {
        "missing_in_ghl": "paid in Wizehire, no GHL order found (sync record, ghl_order_id, "
        "invoice); queued order.updated",
        "missing_in_wizehire": "GHL checkout with a mapped price; no Wizehire order links it",
        "amount_mismatch": "matched by sync record; Wizehire 149.00 vs GHL total 139.00",
        "status_mismatch": "matched by ghl_order_id; Wizehire pending vs GHL paid",
        "fulfillment_missing": "matched by sync record; GHL order paid without fulfillment",
        "matched": "matched by sync record",
    }[category]


async def test_operator_logs_in_reads_insights_and_the_report(
    database_url: str,
    engine: Any,
    chromium_path: str,
    spawner: Spawner,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright

    _, base = await spawner.server(
        database_url, WIZESYNC_ENV="development", ADMIN_TOKEN=ADMIN_TOKEN, WORKER="off"
    )
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await plant(http, prefix="/sandbox", second_location=False)
        run_id = await _plant_run(database_url)
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

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

                # A window that holds the planted history (the sandbox clock ran ~10 days on).
                since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
                until = (datetime.now(UTC) + timedelta(days=13)).date().isoformat()
                await page.fill("input[name=since]", since)
                await page.fill("input[name=until]", until)
                await page.select_option("select[name=interval]", "day")
                await page.click("form.filters button[type=submit]")
                await page.wait_for_load_state()
                assert "since=" + since in page.url
                json_href = await page.get_attribute("a[href^='/insights/revenue?']", "href")
                assert json_href
                body = (await http.get(json_href, headers=bearer)).json()
                assert body["currency"] == "USD"
                assert body["totals"]["orders"] > 0
                for section in ("totals", "subscriptions", "unreconciled"):
                    for key, value in body[section].items():
                        shown = await page.inner_text(f"[data-figure='{section}.{key}']")
                        assert shown == str(value), (section, key, shown, value)
                for row in body["by_product"]:
                    cells = await page.locator(
                        f"table[data-table=by_product] tr[data-key='{row['sku'] or ''}'] td.num"
                    ).all_inner_texts()
                    assert cells == [
                        row["gross"],
                        row["refunds"],
                        row["net"],
                        str(row["orders"]),
                    ], row
                for row in body["by_location"]:
                    cells = await page.locator(
                        f"table[data-table=by_location] tr[data-key='{row['location_id']}'] td.num"
                    ).all_inner_texts()
                    assert cells == [
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

                # The unreconciled orders lead to the report; its tabs count the run's items.
                await page.click(f"a[href='/reports/reconciliation/{run_id}']")
                await page.wait_for_url(f"{base}/reports/reconciliation/{run_id}")
                run = (
                    await http.get(f"/reports/reconciliation/{run_id}.csv", headers=bearer)
                ).text.splitlines()[1:]
                for category in CATEGORIES:
                    tab = page.locator(f"nav.tabs a[data-category='{category}'] .count")
                    assert await tab.inner_text() == str(PLANTED.get(category, 0)), category
                assert await page.locator("table[data-table=items] tbody tr").count() == len(run)
                await page.screenshot(path=tmp_path / "reconciliation-report.png", full_page=True)
                await page.click("nav.tabs a[data-category='missing_in_ghl']")
                await page.wait_for_url(re.compile(r".*category=missing_in_ghl$"))
                shown = await page.locator("table[data-table=items] tbody tr").evaluate_all(
                    "rows => rows.map(r => r.dataset.category)"
                )
                assert shown == ["missing_in_ghl"] * PLANTED["missing_in_ghl"]
                await page.screenshot(
                    path=tmp_path / "reconciliation-missing-in-ghl.png", full_page=True
                )
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
    for name in (
        "login",
        "insights",
        "insights-phone",
        "reconciliation-report",
        "reconciliation-missing-in-ghl",
        "reconciliation-phone",
        "reconciliation-runs",
    ):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    target = os.environ.get("WIZESYNC_SCREENSHOTS")
    if target and database_url.startswith("sqlite"):
        for png in tmp_path.glob("*.png"):
            shutil.copy(png, Path(target) / png.name)
