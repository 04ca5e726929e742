"""The mapping's `refunds` section against the executors and gateways this process has: checked
where the services are built (the mapping itself only checks the shape), so a typo stops the
start with the field's name instead of failing the first refund."""

from __future__ import annotations

from wizesync.flows.refunds.executors import check_executor_name, load_executors
from wizesync.flows.refunds.gateways import discover
from wizesync.mapping import Mapping, MappingError


def refunds_mapping_problems(mapping: Mapping) -> list[str]:
    load_executors()
    problems: list[str] = []
    unknown = check_executor_name(mapping.refunds.executor)
    if unknown:
        problems.append(f"refunds.executor: {unknown}")
    gateways = discover()
    for where, named in mapping.refunds.gateways.items():
        for gateway, fields in named.items():
            spec = gateways.get(gateway)
            if spec is None:
                problems.append(
                    f"refunds.gateways.{where}.{gateway}: no such gateway; known: "
                    f"{', '.join(sorted(gateways))}"
                )
                continue
            missing = [f for f in spec.credentials if f not in fields]
            extra = sorted(set(fields) - set(spec.credentials))
            if missing:
                problems.append(f"refunds.gateways.{where}.{gateway}: needs {', '.join(missing)}")
            if extra:
                problems.append(
                    f"refunds.gateways.{where}.{gateway}: {gateway} takes only "
                    f"{', '.join(spec.credentials)}, not {', '.join(extra)}"
                )
    return problems


def check_refunds_mapping(mapping: Mapping, path: str | None = None) -> None:
    problems = refunds_mapping_problems(mapping)
    if problems:
        where = f"mapping file {path}" if path else "the built-in mapping"
        raise MappingError(f"{where}: " + "; ".join(problems))
