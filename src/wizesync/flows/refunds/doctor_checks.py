"""`wizesync doctor`'s refund gateway checks: for every gateway the mapping names (per location
or default), each named environment variable is set, and one harmless authenticated call works
(Stripe: `GET /v1/refunds?limit=1`; NMI: a Query API lookup; Authorize.net:
`authenticateTestRequest`). Messages name variables, never their values."""

from __future__ import annotations

import httpx

from wizesync.config import Settings
from wizesync.flows.refunds.gateway_executor import Credentials
from wizesync.flows.refunds.gateways import GatewaySetup, discover
from wizesync.flows.refunds.validation import refunds_mapping_problems
from wizesync.mapping import MappingError, load_mapping

Check = tuple[bool, str, str]
TIMEOUT = httpx.Timeout(10.0)


async def refund_gateway_checks(
    settings: Settings, environ: dict[str, str] | None = None
) -> list[Check]:
    import os

    env = dict(os.environ) if environ is None else environ
    try:
        mapping = load_mapping(settings.mapping_file, default_location=settings.ghl_location_id)
    except MappingError as exc:
        return [(False, "refund gateways", str(exc))]
    problems = refunds_mapping_problems(mapping)
    if problems:
        return [(False, "refund gateways", "; ".join(problems))]
    refunds = mapping.refunds
    if not refunds.gateways:
        return [
            (
                True,
                "refund gateways",
                f"executor {refunds.executor}: no gateway credentials "
                "are named in the mapping, so refunds go to a human "
                "(manual_action_required)",
            )
        ]
    specs = discover()
    results: list[Check] = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        for where, gateways in refunds.gateways.items():
            for name, fields in gateways.items():
                label = f"refunds {name} ({where})"
                unset = [
                    f"{variable} ({field})"
                    for field, variable in sorted(fields.items())
                    if not env.get(variable, "").strip()
                ]
                if unset:
                    results.append(
                        (False, label, "environment variable(s) not set: " + ", ".join(unset))
                    )
                    continue
                credentials = Credentials(
                    {field: env[variable].strip() for field, variable in fields.items()}
                )
                gateway = specs[name].build(
                    GatewaySetup(
                        credentials=credentials.values,
                        settings=settings,
                        http=http,
                        timeout=TIMEOUT,
                    )
                )
                problem = await gateway.check_credentials()
                results.append(
                    (
                        problem is None,
                        label,
                        problem
                        or (
                            "credentials set ({}) and accepted".format(
                                ", ".join(sorted(fields.values()))
                            )
                        ),
                    )
                )
    return results
