"""Issue 19 item 3: an integer above 2^63-1 (what no database column holds) is
bad input, 422, on every API: the site API, the /appliance API and the desk.

Two guards: every integer parameter and request-body field in the three
OpenAPI documents declares bounds a 64-bit column holds (so a new
unbounded one fails here), and, against running servers with an
all-permission token, 2^63 in every integer path and query parameter of
every operation is answered with a 4xx, never a 5xx."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import first_admin_login, first_site_login

TOO_BIG = 1 << 63
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _documents() -> dict[str, dict]:
    from tether.desk import api as desk_api
    from tether.desk import api_ops as desk_ops
    from tether.web import appliance_api, site_api

    desk = FastAPI()
    desk.include_router(desk_api.router)
    desk.include_router(desk_ops.router)
    return {"site": site_api.create().openapi(), "appliance": appliance_api.create().openapi(),
            "desk": desk.openapi()}


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _unbounded(doc: dict, schema: dict, where: str, seen: set) -> list[str]:
    """Every integer in ``schema`` (followed through refs, objects, arrays and unions) without 64-bit bounds."""
    if "$ref" in schema:
        name = schema["$ref"]
        if name in seen:
            return []
        seen = seen | {name}
    schema = _resolve(doc, schema)
    out = []
    if schema.get("type") == "integer":
        lo = schema["minimum"] if "minimum" in schema else schema.get("exclusiveMinimum")
        hi = schema["maximum"] if "maximum" in schema else (
            int(schema["exclusiveMaximum"]) - 1 if "exclusiveMaximum" in schema else None)
        # compared exactly: a float bound that rounds past 2^63-1 documents a value no column holds
        if lo is None or hi is None or int(lo) < INT64_MIN or int(hi) > INT64_MAX:
            out.append(f"{where} (minimum {lo}, maximum {hi})")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            out += _unbounded(doc, sub, where, seen)
    for name, sub in schema.get("properties", {}).items():
        out += _unbounded(doc, sub, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        out += _unbounded(doc, schema["items"], f"{where}[]", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        out += _unbounded(doc, schema["additionalProperties"], f"{where}{{}}", seen)
    return out


@pytest.mark.req("ROB-02")
def test_every_integer_of_every_api_is_bounded():
    found = []
    for face, doc in _documents().items():
        for path, item in doc["paths"].items():
            for method, op in item.items():
                where = f"{face} {method.upper()} {path}"
                for p in op.get("parameters", []):
                    found += _unbounded(doc, p.get("schema", {}), f"{where} {p['in']} {p['name']}", set())
                for media in op.get("requestBody", {}).get("content", {}).values():
                    found += _unbounded(doc, media.get("schema", {}), f"{where} body", set())
    assert not found, "integers without 64-bit bounds (use tether.core.validate Int/Natural/Id):\n" + \
        "\n".join(found)


def _integer_params(doc: dict, op: dict) -> list[dict]:
    return [p for p in op.get("parameters", []) if p["in"] in ("path", "query")
            and any(s.get("type") == "integer" for s in [_resolve(doc, p.get("schema", {}))]
                    + _resolve(doc, p.get("schema", {})).get("anyOf", []))]


def _sample(p: dict) -> str:
    """A harmless value for a path parameter that is not the one under test."""
    s = p.get("schema", {})
    if s.get("enum"):
        return str(s["enum"][0])
    return "1" if s.get("type") == "integer" else "x"


def _try_every_integer(client: httpx.Client, doc: dict, prefix: str, headers: dict) -> tuple[int, list[str]]:
    """2^63 in each integer path/query parameter of each operation; the 5xx answers (and how many tried)."""
    tried, failures = 0, []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for target in _integer_params(doc, op):
                params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
                url = re.sub(r"\{([^}]+)\}", lambda m: str(TOO_BIG) if m.group(1) == target["name"]
                             else _sample(params.get(m.group(1), {})), path)
                query = {target["name"]: str(TOO_BIG)} if target["in"] == "query" else {}
                kw = {"json": {}} if "requestBody" in op else {}
                r = client.request(method.upper(), prefix + url, params=query, headers=headers, **kw)
                tried += 1
                if r.status_code >= 500:
                    failures.append(f"{method.upper()} {prefix}{url} {query}: {r.status_code} {r.text[:200]}")
    return tried, failures


@pytest.mark.req("ROB-02")
def test_too_big_integers_are_bad_input_on_the_appliance(make_appliance):
    a = make_appliance(site=True)
    c = a.client()
    ah, sh = first_admin_login(c), first_site_login(c)  # both built-in admins: every permission of their face
    tried = 0
    for prefix, headers in (("/api", sh), ("/appliance/api", ah)):
        doc = c.get(f"{prefix}/openapi.json").json()
        n, failures = _try_every_integer(c, doc, prefix, headers)
        assert not failures, "\n".join(failures)
        tried += n
    assert tried >= 10  # offsets, ids, positions: the walk really reached them
    # integers in bodies, the reported case: an assignment to certificate 2^63
    r = c.put("/appliance/api/certificate-assignments/127.0.0.1", headers=ah, json={"id": TOO_BIG})
    assert r.status_code == 422 and r.json()["field"] == "id", r.text
    assert c.get("/health").status_code == 200
    c.close()


@pytest.mark.req("ROB-02")
def test_too_big_integers_are_bad_input_on_the_desk(desk_factory):
    d = desk_factory()
    doc = d.api.get("/api/openapi.json").json()
    tried, failures = _try_every_integer(d.api, doc, "", {})
    assert not failures, "\n".join(failures)
    assert tried >= 8
    r = d.api.post("/api/rmas", json={"customer_id": TOO_BIG, "serial": "X", "reason": "y"})
    assert r.status_code == 422, r.text
