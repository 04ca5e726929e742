"""Gateways are plug-ins: each module of `flows.refunds.gateways` registers itself, and each
becomes an executor by its name; the mapping's names are checked against them at start-up."""

from __future__ import annotations

import pytest

from wizesync.flows.refunds.executors import executor_names, load_executors
from wizesync.flows.refunds.gateways import discover, gateway_for_provider
from wizesync.flows.refunds.validation import check_refunds_mapping, refunds_mapping_problems
from wizesync.mapping import Mapping, MappingError, Refunds


def test_every_gateway_module_is_found_and_is_an_executor() -> None:
    specs = discover()
    assert set(specs) == {"stripe", "nmi", "authorize_net"}
    assert {"auto", "manual", *specs} <= set(load_executors())


@pytest.mark.parametrize(
    ("provider", "gateway"),
    [
        ("stripe", "stripe"),
        ("nmi", "nmi"),
        ("NMI", "nmi"),
        ("authorize-net", "authorize_net"),
        ("authorize_net", "authorize_net"),
        ("manual", None),
        ("", None),
        (None, None),
    ],
)
def test_ghl_provider_types_map_to_gateways(provider: str | None, gateway: str | None) -> None:
    spec = gateway_for_provider(provider)
    assert (spec.name if spec else None) == gateway


def _mapping(**refunds: object) -> Mapping:
    return Mapping(refunds=Refunds(**refunds))  # type: ignore[arg-type]


def test_the_default_is_auto_and_passes() -> None:
    assert Mapping().refunds.executor == "auto"
    check_refunds_mapping(Mapping())
    assert "auto" in executor_names()


def test_gateway_blocks_are_checked_against_the_plugins() -> None:
    mapping = _mapping(
        gateways={
            "default": {"stripe": {"api_key_env": "K"}, "paypal": {"client_id_env": "P"}},
            "loc_1": {
                "nmi": {},
                "authorize_net": {
                    "login_id_env": "L",
                    "transaction_key_env": "T",
                    "extra_env": "X",
                },
            },
        }
    )
    problems = refunds_mapping_problems(mapping)
    assert problems == [
        "refunds.gateways.default.paypal: no such gateway; known: authorize_net, nmi, stripe",
        "refunds.gateways.loc_1.nmi: needs security_key_env",
        "refunds.gateways.loc_1.authorize_net: authorize_net takes only login_id_env, "
        "transaction_key_env, not extra_env",
    ]
    with pytest.raises(MappingError, match=r"the built-in mapping: refunds\.gateways"):
        check_refunds_mapping(mapping)


def test_credential_names_prefer_the_locations_block() -> None:
    refunds = Refunds(
        gateways={
            "default": {"stripe": {"api_key_env": "DEFAULT_KEY"}},
            "loc_1": {"stripe": {"api_key_env": "LOC_KEY"}},
        }
    )
    assert refunds.credential_names("loc_1", "stripe") == {"api_key_env": "LOC_KEY"}
    assert refunds.credential_names("loc_2", "stripe") == {"api_key_env": "DEFAULT_KEY"}
    assert refunds.credential_names("loc_2", "nmi") is None


def test_a_new_gateway_is_one_registration_away(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What a `gateways/paypal.py` would do at import: afterwards `auto` routes PayPal payments
    to it, `executor: paypal` exists and the mapping may name its credentials."""
    from wizesync.flows.refunds import executors, gateways
    from wizesync.flows.refunds.gateways import GatewaySpec, register_gateway

    monkeypatch.setattr(gateways, "_REGISTRY", dict(gateways._REGISTRY))
    monkeypatch.setattr(executors, "_FACTORIES", dict(executors._FACTORIES))

    def build(setup):  # type: ignore[no-untyped-def]
        raise AssertionError("not called here")

    register_gateway(
        GatewaySpec(
            name="paypal",
            provider_types=("paypal",),
            credentials=("client_id_env", "secret_env"),
            build=build,
        )
    )

    assert "paypal" in load_executors()
    assert gateway_for_provider("paypal").name == "paypal"  # type: ignore[union-attr]
    mapping = _mapping(
        executor="paypal",
        gateways={"default": {"paypal": {"client_id_env": "PP_ID", "secret_env": "PP_SECRET"}}},
    )
    assert refunds_mapping_problems(mapping) == []
