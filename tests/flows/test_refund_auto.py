"""`auto`: the executor is picked from GHL's transaction (its provider type and charge id), per
location credentials named in the mapping; without a gateway for the money, a human is asked
with the reason in words. And when GHL does not show a gateway refund in time, Slack says so."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from tests.flows.conftest import FlowKit
from tests.flows.gateway_scenarios import (
    GATEWAY_ENV,
    GATEWAY_SETTINGS,
    GATEWAYS,
    assert_patches_follow_the_contract,
    gateway_mapping,
    set_gateway_env,
)
from tests.flows.support_refunds import (
    paid_order,
    refresh,
    refund_body,
    request_refund,
    stored_refund,
    wizehire_refund,
)
from wizesync.db import refund_repo
from wizesync.db.base import utcnow
from wizesync.flows.payments.poller import Poller
from wizesync.mapping import Mapping


@pytest.fixture
def flow_settings_overrides() -> dict[str, Any]:
    return dict(GATEWAY_SETTINGS)


@pytest.fixture
def flow_mapping() -> Mapping:
    return gateway_mapping()


@pytest.fixture(autouse=True)
def gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    set_gateway_env(monkeypatch)


async def _refund(flow: FlowKit, provider: str, refund_id: str, amount: str = "15.00") -> None:
    order = await paid_order(flow, f"wh_ord_{refund_id}", provider=provider)
    [event] = await flow.process(
        await request_refund(
            flow, refund_body(order.wizehire_order_id, amount, refund_id=refund_id)
        )
    )
    assert event.status == "done", event.last_error


@pytest.mark.parametrize(
    ("provider", "gateway"),
    [("stripe", "stripe"), ("nmi", "nmi"), ("authorize-net", "authorize_net")],
)
async def test_auto_picks_the_gateway_holding_the_money(
    flow: FlowKit, provider: str, gateway: str
) -> None:
    await _refund(flow, provider, "wh_ref_pick")

    [made] = flow.sb.gateways.refunds
    assert made.gateway == gateway
    seen = wizehire_refund(flow, "wh_ref_pick")
    assert seen is not None and seen["status"] == "succeeded" and seen["gateway"] == gateway
    stored = await stored_refund(flow, "wh_ref_pick")
    assert stored is not None and stored.executor == "auto" and stored.gateway == gateway


def _asked_a_human(flow: FlowKit, refund_id: str, because: str) -> None:
    seen = wizehire_refund(flow, refund_id)
    assert seen is not None and seen["status"] == "manual_action_required", seen
    assert because in seen["failure_reason"], seen["failure_reason"]
    assert "gateway" not in seen and not flow.sb.gateways.refunds
    [message] = flow.slack.matching("Refund needs a human")
    assert f"Why a human: {seen['failure_reason']}" in message
    assert_patches_follow_the_contract(flow, refund_id)


async def test_paid_offline_asks_a_human_saying_so(flow: FlowKit) -> None:
    await _refund(flow, "manual", "wh_ref_offline")

    _asked_a_human(
        flow,
        "wh_ref_offline",
        "paid offline in GHL (payment provider 'manual'): "
        "refund it where the money was taken, then record "
        "it in GHL",
    )


async def test_a_provider_without_a_gateway_asks_a_human_naming_it(flow: FlowKit) -> None:
    await _refund(flow, "paypal", "wh_ref_paypal")

    _asked_a_human(
        flow,
        "wh_ref_paypal",
        "payment provider 'paypal' has no refund gateway here (known: authorize_net, nmi, stripe)",
    )


class TestNoCredentials:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return gateway_mapping(gateways={"some_other_location": GATEWAYS["default"]})

    async def test_no_credentials_for_the_location_asks_a_human(self, flow: FlowKit) -> None:
        await _refund(flow, "stripe", "wh_ref_nocred")

        _asked_a_human(
            flow,
            "wh_ref_nocred",
            f"the mapping names no stripe credentials for GHL location {flow.location_id}",
        )


async def test_a_named_variable_that_is_not_set_asks_a_human(
    flow: FlowKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WZTEST_NMI_KEY")

    await _refund(flow, "nmi", "wh_ref_noenv")

    _asked_a_human(
        flow,
        "wh_ref_noenv",
        "environment variable WZTEST_NMI_KEY (nmi security_key_env for GHL location",
    )


async def test_refused_credentials_ask_a_human_and_no_secret_is_said_anywhere(
    flow: FlowKit, caplog: pytest.LogCaptureFixture
) -> None:
    secret = GATEWAY_ENV["WZTEST_STRIPE_KEY"]
    flow.sb.gateways.rejected_credentials.add(secret)
    caplog.set_level(logging.DEBUG)

    await _refund(flow, "stripe", "wh_ref_badkey")

    _asked_a_human(flow, "wh_ref_badkey", "Stripe refused the credentials")
    said = [r.getMessage() + str(r.__dict__) for r in caplog.records]
    said += flow.slack.messages + [str(c) for c in flow.wizehire_calls()]
    assert not [s for s in said if secret in s]


class TestPerLocationCredentials:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        from tests.flows.conftest import LOCATION_ID

        return gateway_mapping(
            gateways={**GATEWAYS, LOCATION_ID: {"stripe": {"api_key_env": "WZTEST_STRIPE_KEY_LOC"}}}
        )

    async def test_the_locations_own_credentials_win_over_the_default(
        self, flow: FlowKit, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("WZTEST_STRIPE_KEY_LOC", "sk_test_location")
        flow.sb.gateways.rejected_credentials.add(GATEWAY_ENV["WZTEST_STRIPE_KEY"])

        await _refund(flow, "stripe", "wh_ref_loc")

        assert wizehire_refund(flow, "wh_ref_loc")["status"] == "succeeded"  # type: ignore[index]


class TestGhlLate:
    @pytest.fixture
    def flow_settings_overrides(self) -> dict[str, Any]:
        return {**GATEWAY_SETTINGS, "refund_ghl_catchup_seconds": 60}

    async def test_slack_is_told_once_when_ghl_does_not_show_the_refund_in_time(
        self, flow: FlowKit
    ) -> None:
        flow.sb.gateways.ghl_lag = True
        order = await paid_order(flow, "wh_ord_late", provider="nmi")
        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "40.00", refund_id="wh_ref_late")
            )
        )
        poller = Poller(
            settings=flow.settings, sessionmaker=flow.sessionmaker, services=flow.services
        )
        assert wizehire_refund(flow, "wh_ref_late")["status"] == "succeeded"  # type: ignore[index]

        await poller.poll_all(force=True)  # not late yet
        await flow.send_notices()
        assert not flow.slack.matching("GHL does not show a gateway refund yet")

        stored = await stored_refund(flow, "wh_ref_late")
        assert stored is not None
        async with flow.sessionmaker.begin() as session:
            await refund_repo.set_fields(
                session, stored.id, gateway_attempted_at=utcnow() - timedelta(seconds=61)
            )
        await poller.poll_all(force=True)
        await poller.poll_all(force=True)
        await flow.send_notices()

        [message] = flow.slack.matching("GHL does not show a gateway refund yet")
        assert "wh_ref_late" in message and "refund_mismatch" in message
        assert stored.gateway_refund_id and stored.gateway_refund_id in message

        await flow.control.post("/_sandbox/gateways/ghl-sync")
        state = await refresh(flow, order)

        assert state.amount_refunded == 40
        stored = await stored_refund(flow, "wh_ref_late")
        assert stored is not None and stored.ghl_seen_at is not None
        assert stored.ghl_catchup_notified_at is not None

    async def test_a_later_refund_counts_the_one_ghl_does_not_show_yet(self, flow: FlowKit) -> None:
        flow.sb.gateways.ghl_lag = True
        order = await paid_order(flow, "wh_ord_lag2", provider="stripe")
        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "100.00", refund_id="wh_ref_lag_a")
            )
        )
        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "100.00", refund_id="wh_ref_lag_b")
            )
        )

        assert wizehire_refund(flow, "wh_ref_lag_a")["status"] == "succeeded"  # type: ignore[index]
        refused = wizehire_refund(flow, "wh_ref_lag_b")
        assert refused is not None and refused["status"] == "failed"
        assert "100.00 in other refunds not yet carried out" in refused["failure_reason"]
        assert len(flow.sb.gateways.refunds) == 1
