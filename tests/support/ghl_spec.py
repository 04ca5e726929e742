"""Check requests and answers against HighLevel's official OpenAPI files (never copied here).

The files are looked up in `GHL_OPENAPI_DIR`, else `<repo>/../shared/ghl-openapi`; where they are
absent (a user's machine) every check calls `pytest.skip`. `$ref`s (also to
`../common/common-schemas.json`) are resolved with `referencing`; OpenAPI 3.0's `nullable` becomes
JSON Schema's `null` type; and a short, explicit errata table corrects the few declared types that
real GHL (and the spec's own examples) contradict.

Request bodies are checked strictly (no property the spec does not name), answers leniently
(GHL adds fields freely).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Erratum:
    file: str  # relative to the spec folder
    pointer: str  # JSON pointer; one segment may be a `*` glob
    schema: dict[str, Any]  # replaces the node
    reason: str


ERRATA: tuple[Erratum, ...] = (
    *(
        Erratum(
            "apps/payments.json",
            f"/components/schemas/{name}/properties/{prop}",
            {"type": "string"},
            f"declared `type: object`, but the example ({example!r}) and real answers are strings",
        )
        for name, prop, example in (
            ("TxnResponseSchema", "status", "succeeded"),
            ("GetTxnResponseSchema", "status", "succeeded"),
            ("SubscriptionResponseSchema", "status", "active"),
            ("GetSubscriptionResponseSchema", "status", "active"),
            ("GetSubscriptionResponseSchema", "altType", "location"),
        )
    ),
    Erratum(
        "apps/payments.json",
        "/components/schemas/GetOrderResponseSchema/properties/items/items",
        {"type": "object"},
        "declared strings; real order items are objects {name, qty, product, price} "
        "(webhooks/OrderCreate.json example)",
    ),
    Erratum(
        "apps/invoices.json",
        "/components/schemas/*/properties/invoiceItems/items",
        {"type": "object"},
        "declared strings; the property's own example and webhooks/InvoicePaid.json show objects",
    ),
    Erratum(
        "apps/payments.json",
        "/components/schemas/ListWhitelabelIntegrationProviderResponseDto/properties/providers",
        {"type": "array", "items": {"$ref": "#/components/schemas/IntegrationProviderSchema"}},
        "described as a 'list of integration provider' and paged, but typed as one object",
    ),
)


def spec_dir() -> Path | None:
    """The spec folder, or None when it is not on this machine."""
    configured = os.environ.get("GHL_OPENAPI_DIR")
    folder = Path(configured) if configured else REPO.parent / "shared" / "ghl-openapi"
    return folder if (folder / "apps").is_dir() else None


def require_spec_dir() -> Path:
    folder = spec_dir()
    if folder is None:
        reason = "the official GHL OpenAPI files are absent (set GHL_OPENAPI_DIR)"
        # CI lays shared/ beside the clone: there a missing spec is a broken set-up, not a skip.
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    return folder


def operation(spec_file: str, method: str, path_template: str) -> dict[str, Any]:
    """The spec's operation object; fails when the spec has no such call (a wrong path)."""
    docs, _ = _loaded(str(require_spec_dir()), strict=False)
    paths = docs[_file(spec_file)].get("paths", {})
    assert path_template in paths, f"{spec_file} has no path {path_template}"
    op = paths[path_template].get(method.lower())
    assert op is not None, f"{spec_file} has no {method.upper()} {path_template}"
    return op


def validate_request_body(spec_file: str, method: str, path_template: str, body: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `body` is exactly what the spec asks for."""
    op = operation(spec_file, method, path_template)
    assert "application/json" in op.get("requestBody", {}).get("content", {}), (
        f"{method.upper()} {path_template} takes no JSON body"
    )
    pointer = _pointer(
        "paths",
        path_template,
        method.lower(),
        "requestBody",
        "content",
        "application/json",
        "schema",
    )
    _validator(spec_file, pointer, strict=True).validate(body)


def validate_response(
    spec_file: str, method: str, path_template: str, status: int, body: Any
) -> bool:
    """Raise `jsonschema.ValidationError` unless `body` fits the documented answer. Returns
    False (checked nothing) when the spec documents no schema for that status."""
    op = operation(spec_file, method, path_template)
    answer = op.get("responses", {}).get(str(status))
    assert answer is not None, f"{method.upper()} {path_template} documents no {status} answer"
    if "schema" not in answer.get("content", {}).get("application/json", {}):
        return False
    pointer = _pointer(
        "paths",
        path_template,
        method.lower(),
        "responses",
        str(status),
        "content",
        "application/json",
        "schema",
    )
    _validator(spec_file, pointer, strict=False).validate(body)
    return True


def validate_query(spec_file: str, method: str, path_template: str, params: dict[str, Any]) -> None:
    """Every required query parameter is present and every enum-valued one has a listed value.
    Parameters the spec does not declare are allowed (GHL-FACTS: payments calls also take
    `altType=location` where the spec forgets it)."""
    op = operation(spec_file, method, path_template)
    for param in op.get("parameters", []):
        if param.get("in") != "query":
            continue
        name = param["name"]
        if param.get("required"):
            assert name in params, f"{method.upper()} {path_template} needs query {name!r}"
        enum = param.get("schema", {}).get("enum")
        if enum and name in params:
            assert params[name] in enum, f"query {name}={params[name]!r} not in {enum}"


def required_header_values(spec_file: str, method: str, path_template: str) -> dict[str, list]:
    """Required header parameters and their allowed values (e.g. `Version: 2021-07-28`)."""
    op = operation(spec_file, method, path_template)
    return {
        p["name"]: p.get("schema", {}).get("enum", [])
        for p in op.get("parameters", [])
        if p.get("in") == "header" and p.get("required")
    }


# --- loading -----------------------------------------------------------------------------------
def _file(spec_file: str) -> str:
    return spec_file if "/" in spec_file else f"apps/{spec_file}"


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _validator(spec_file: str, pointer: str, *, strict: bool) -> Draft4Validator:
    folder = require_spec_dir()
    _, registry = _loaded(str(folder), strict=strict)
    uri = (folder / _file(spec_file)).resolve().as_uri()
    return Draft4Validator({"$ref": f"{uri}#{quote(pointer, safe='/~')}"}, registry=registry)


@lru_cache(maxsize=4)
def _loaded(folder: str, *, strict: bool) -> tuple[dict[str, dict[str, Any]], Registry]:
    root = Path(folder)
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("apps/*.json")) + sorted(root.glob("common/*.json")):
        docs[path.relative_to(root).as_posix()] = json.loads(path.read_text())
    for erratum in ERRATA:
        _apply(docs[erratum.file], erratum)
    registry: Registry = Registry()
    for name, doc in docs.items():
        schema_doc = _to_json_schema(copy.deepcopy(doc), strict=strict)
        uri = (root / name).resolve().as_uri()
        registry = registry.with_resource(uri, Resource(contents=schema_doc, specification=DRAFT4))
    return docs, registry


def _apply(doc: dict[str, Any], erratum: Erratum) -> None:
    """Replace every node the pointer matches; an erratum matching nothing means the spec changed
    and the table must be reviewed."""
    parts = erratum.pointer.strip("/").split("/")
    hits = 0

    def walk(node: Any, rest: list[str]) -> None:
        nonlocal hits
        if not isinstance(node, dict):
            return
        head, *tail = rest
        for key in [k for k in node if fnmatch.fnmatchcase(k, head)]:
            if tail:
                walk(node[key], tail)
            else:
                node[key] = copy.deepcopy(erratum.schema)
                hits += 1

    walk(doc, parts)
    assert hits, f"erratum no longer matches the spec: {erratum.file}{erratum.pointer}"


def _to_json_schema(node: Any, *, strict: bool) -> Any:
    """OpenAPI 3.0 -> JSON Schema draft 4: `nullable` as a null type; in strict mode, objects with
    declared properties refuse undeclared ones (catches a misspelt body key)."""
    if isinstance(node, list):
        return [_to_json_schema(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value, strict=strict) for key, value in node.items()}
    if strict and isinstance(out.get("properties"), dict) and out["properties"]:
        if "additionalProperties" not in out and out.get("type", "object") == "object":
            out["additionalProperties"] = False
    if out.get("nullable") is True:
        del out["nullable"]
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out
