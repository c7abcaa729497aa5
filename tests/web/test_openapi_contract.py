"""The OpenAPI documents describe every successful JSON answer (issue 19 item 10): each 2xx
``application/json`` response of ``/api/openapi.json`` and ``/appliance/api/openapi.json`` has a
schema with named properties (or items of one), never ``{}`` or a bare object; and the answers of
a scripted run of successful calls (creations, uploads, deletions the fuzz test rarely reaches)
match the schema their document declares."""

from __future__ import annotations

import base64
import re

import pytest
from jsonschema import Draft202012Validator

from tests.helpers import api_token, ok

FACES = (("site", "/api"), ("appliance", "/appliance/api"))


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _typed(doc: dict, schema: dict | None) -> bool:
    """A schema that says something: properties of an object, items of an array, or alternatives."""
    if not schema:
        return False
    schema = _resolve(doc, schema)
    if "anyOf" in schema or "oneOf" in schema:
        return all(_typed(doc, s) for s in schema.get("anyOf", schema.get("oneOf")) if s.get("type") != "null")
    if schema.get("type") == "array":
        return _typed(doc, schema.get("items"))
    if schema.get("type") in (None, "object"):
        return bool(schema.get("properties"))
    return True  # a scalar


def untyped_answers(doc: dict) -> list[str]:
    offenders = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op.get("responses", {}).items():
                media = (resp.get("content") or {}).get("application/json")
                if status.startswith("2") and media is not None and not _typed(doc, media.get("schema")):
                    offenders.append(f"{method.upper()} {path} {status}: {media.get('schema')}")
    return offenders


@pytest.fixture
def documents(ready_site):
    a, c, ah, sh = ready_site
    return {face: ok(c.get(f"{prefix}/openapi.json")) for face, prefix in FACES}


def test_the_check_flags_untyped_answers():
    doc = {"components": {"schemas": {"Bare": {"type": "object"}, "Row": {"properties": {"a": {}}}}},
           "paths": {"/x": {"get": {"responses": {
               "200": {"content": {"application/json": {"schema": {}}}},
               "201": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Bare"}}}},
               "202": {"content": {"application/json": {"schema": {"type": "array", "items": {}}}}},
               "203": {"content": {"application/json": {"schema": {"type": "array", "items": {
                   "$ref": "#/components/schemas/Row"}}}}},
               "204": {"content": {"application/octet-stream": {}}},
               "422": {"content": {"application/json": {"schema": {}}}}}}}}}
    assert [o.split(":")[0] for o in untyped_answers(doc)] == ["GET /x 200", "GET /x 201", "GET /x 202"]


@pytest.mark.req("ROB-02")
def test_every_json_success_is_described_by_a_schema(documents):
    for face, doc in documents.items():
        assert len(doc["paths"]) > 20, face
        offenders = untyped_answers(doc)
        assert not offenders, f"{face}: {len(offenders)} untyped 2xx JSON answers:\n" + "\n".join(offenders)


def _schema(doc: dict, method: str, path: str, status: int) -> dict:
    """The declared schema of the operation whose path template matches ``path``."""
    path = path.split("?", 1)[0]
    for template, ops in doc["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path) and method in ops:
            media = ops[method]["responses"][str(status)]["content"]["application/json"]
            return {**media["schema"], "components": doc["components"]}
    raise AssertionError(f"no operation {method.upper()} {path} in the document")


@pytest.mark.req("ROB-02")
def test_successful_answers_match_their_documented_schemas(ready_site, documents):
    a, c, ah, sh = ready_site
    problems: list[str] = []
    seen = 0

    def call(face: str, method: str, path: str, status: int = 200, **kw):
        nonlocal seen
        prefix = dict(FACES)[face]
        r = c.request(method, prefix + path, headers=kw.pop("headers", ah if face == "appliance" else sh), **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text[:300])
        body = r.json()
        for e in Draft202012Validator(_schema(documents[face], method.lower(), path, status)).iter_errors(body):
            problems.append(f"{face} {method} {path}: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}")
        seen += 1
        return body

    acct = call("site", "POST", "/api-accounts", 201, json={"name": "contract", "permissions": ["command"]})
    token = {"Authorization": f"Bearer {api_token(c, acct['client_id'], acct['client_secret'])}"}
    call("site", "POST", "/oauth/token", data={"grant_type": "client_credentials", "client_id": acct["client_id"],
                                               "client_secret": acct["client_secret"]}, headers={})
    call("site", "GET", "/api-accounts")
    call("site", "GET", "/me", headers=token)
    call("site", "POST", "/users", 201, json={"username": "carol", "password": "Contract-pass-1234"})
    call("site", "PUT", "/users/carol", json={"display_name": "Carol", "email": "carol@example.org"})
    call("site", "PUT", "/users/carol/password", json={"password": "Contract-pass-5678"})
    call("site", "POST", "/config/teams", 201, json={"name": "Tier 1", "members": [{"username": "carol"}]})
    call("site", "GET", "/config/teams/Tier 1")
    call("site", "POST", "/config/event-targets", 201, json={
        "name": "hook", "kind": "webhook", "url": "https://127.0.0.1:9/x", "hmac_secret": "s3cret-value-of-16+",
        "event_types": ["file.upload"]})
    call("site", "GET", "/config/event-targets")
    call("site", "PUT", "/config/settings/inter-appliance-psk", json={"psk": base64.b64encode(b"k" * 32).decode()})
    call("site", "PUT", "/config/settings/branding", json={**call("site", "GET", "/config/settings/branding")})
    call("site", "PUT", "/config/site", json=call("site", "GET", "/config/site"))
    s = call("site", "POST", "/command/sessions", 201, json={"rep": "admin", "kind": "support",
                                                             "customer_name": "Dana"})
    call("site", "POST", f"/command/sessions/{s['lsid']}/events", 201, json={"type": "chat", "actor": "admin"})
    call("site", "PUT", f"/command/sessions/{s['lsid']}/recordings/session", 201, content=b"frames")
    call("site", "POST", f"/command/sessions/{s['lsid']}/end", json={"reason": "rep_closed"})
    call("site", "GET", f"/reporting/sessions/{s['lsid']}")
    call("site", "GET", "/reporting/sessions")
    call("site", "GET", "/reporting/recordings?order=oldest")
    call("site", "PUT", "/files/guide.txt?description=a%20guide", content=b"hello")
    call("site", "GET", "/files")
    call("site", "DELETE", "/files/guide.txt")
    call("site", "POST", "/clients/deployments", 201, json={"kind": "jump"})
    call("site", "GET", "/clients/deployments")
    call("site", "GET", "/clients")
    call("site", "DELETE", "/config/teams/Tier 1")
    call("site", "DELETE", "/users/carol")
    call("site", "DELETE", "/api-accounts/" + acct["client_id"])
    call("site", "GET", "/changes?limit=5")
    call("site", "POST", "/command/check_health")
    cert = call("appliance", "POST", "/certificates/self-signed", 201, json={"name": "contract",
                                                                          "fqdn": "tether.example.org"})
    call("appliance", "PUT", "/certificate-assignments/127.0.0.1", json={"id": cert["id"]})
    call("appliance", "GET", "/certificates")
    call("appliance", "POST", "/certificate-requests", 201, json={"name": "ca-request", "fqdn": "tether.example.org"})
    call("appliance", "GET", "/certificate-requests")
    call("appliance", "PUT", "/monitoring", json=call("appliance", "GET", "/monitoring"))
    call("appliance", "GET", "/jobs")
    call("appliance", "GET", "/site")
    call("appliance", "GET", "/dashboard")
    assert seen >= 40
    assert not problems, "\n".join(problems)
