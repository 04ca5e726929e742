"""`wizesync trigger`'s samples name what the sandbox holds (against a `wizesync sandbox`
process, as `make demo` and docker compose's dev profile run it), and where the sandbox is."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.sandbox_proc import running_sandbox
from wizesync.config import Settings
from wizesync.trigger import TriggerError, build
from wizesync.trigger import sandbox_url as where
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID, DEFAULT_PRIVATE_TOKEN

pytestmark = pytest.mark.slow


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_the_sandbox_is_found_where_the_service_looks_for_ghl() -> None:
    assert where(settings(), "http://127.0.0.1:8000/") == "http://127.0.0.1:8000/sandbox"
    separate = settings(
        ghl_api_url="http://127.0.0.1:8010/ghl", ghl_private_token="t", ghl_location_id="L"
    )
    assert where(separate, "http://127.0.0.1:8000") == "http://127.0.0.1:8010"
    real = settings(ghl_private_token="t", ghl_location_id="L")
    assert where(real, "http://127.0.0.1:8000") is None


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as url:
        yield url


@pytest.fixture
def against(sandbox_url: str) -> Settings:
    return settings(
        ghl_api_url=f"{sandbox_url}/ghl",
        ghl_private_token=DEFAULT_PRIVATE_TOKEN,
        ghl_location_id=DEFAULT_LOCATION_ID,
    )


def test_ghl_order_samples_name_an_order_the_sandbox_holds(
    against: Settings, sandbox_url: str
) -> None:
    with httpx.Client(timeout=10) as http:
        first = build(
            "OrderCreate", settings=against, service_url="http://x", order_id=None, http=http
        )
        again = build(
            "OrderStatusUpdate", settings=against, service_url="http://x", order_id=None, http=http
        )
        orders = http.get(
            f"{sandbox_url}/_sandbox/state", params={"location_id": DEFAULT_LOCATION_ID}
        ).json()["ghl"]["orders"]
    assert first.source == "ghl"
    assert first.body["locationId"] == DEFAULT_LOCATION_ID
    assert first.body["_id"] in {o["_id"] for o in orders}
    assert first.body["type"] == "OrderCreate" and first.body["webhookId"]
    assert again.body["_id"] == first.body["_id"]
    assert again.note == f"GHL order {first.body['_id']}"


def test_wizehire_samples_record_the_order_and_refund_only_what_synced(
    against: Settings,
    sandbox_url: str,
) -> None:
    with httpx.Client(timeout=10) as http:
        with pytest.raises(
            TriggerError, match=re.escape("run `wizesync trigger order.created` first")
        ):
            build(
                "refund.requested",
                settings=against,
                service_url="http://x",
                order_id=None,
                http=http,
            )
        created = build(
            "order.created", settings=against, service_url="http://x", order_id=None, http=http
        )
        order_id = created.body["data"]["order"]["id"]
        held = http.get(f"{sandbox_url}/_sandbox/wizehire/orders/{order_id}")
        assert held.status_code == 200
        updated = build(
            "order.updated", settings=against, service_url="http://x", order_id=order_id, http=http
        )
    assert updated.body["data"]["order"]["id"] == order_id
    assert "ghl_sync" not in updated.body["data"]["order"]


def test_an_unreachable_sandbox_is_said_in_words() -> None:
    unreachable = settings(
        ghl_api_url="http://127.0.0.1:9/ghl", ghl_private_token="t", ghl_location_id="L"
    )
    with (
        httpx.Client(timeout=5) as http,
        pytest.raises(TriggerError, match="could not reach the sandbox"),
    ):
        build("OrderCreate", settings=unreachable, service_url="http://x", order_id=None, http=http)
