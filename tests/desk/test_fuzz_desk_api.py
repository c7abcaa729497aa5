"""Schemathesis over the support desk's OpenAPI document, ``/api/openapi.json``
(issue 19, ROB-02 and SEC-05 for the desk): every operation is called with
generated input against a running desk seeded with one of everything.

* With the staff session (bearer token): fails on any 5xx, any status code the
  document does not declare for the operation, a wrong content type, and any
  JSON body not matching its declared schema.
* Without the staff session (no credentials at all; an appliance token; the
  staff cookie without its CSRF header): the same checks, and no operation
  but the public ones (the customer's face: opening an incident, a message,
  feedback; the release catalog) succeeds; an appliance token reaches only
  its own operations, the cookie without CSRF only reads. The document
  declares credentials on every other operation.

Bounded: a few examples per operation, derandomized, no shrinking, no example
database."""

from __future__ import annotations

import re

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.fuzzing import failure, run_operation
from tests.helpers import ok

EXCLUDED = [r"POST /api/logout"]  # would end the staff session the run uses
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# what a caller without credentials may do (representatives are known by their email address only)
PUBLIC = {"GET /api/health", "POST /api/login", "POST /api/incidents", "POST /api/incidents/{number}/messages",
          "POST /api/incidents/{number}/supervisor-request", "POST /api/incidents/{number}/feedback",
          "GET /api/releases", "GET /api/releases/check"}
APPLIANCE = {"POST /api/appliance/incidents", "GET /api/updates/appliances/{name}",
             "POST /api/updates/appliances/{name}/installed"}


def _schemes(doc: dict, op) -> list[set[str]]:
    """The operation's security requirements as sets of scheme names; [] when it needs none
    (an empty requirement, ``{}``, makes credentials optional)."""
    reqs = op.definition.raw.get("security", doc.get("security", []))
    return [set(r) for r in reqs]


def _seed(desk) -> str:
    """One customer (with an agreement and a representative), incident, attachment, RMA, hosted
    appliance and appliance token, so generated small ids reach real rows; the token's secret."""
    desk.customer("Fuzz Corp", ["rep@fuzz.test"])
    desk.open("rep@fuzz.test", attachments=[{"filename": "log.txt", "content_base64": "aGVsbG8=",
                                            "content_type": "text/plain"}])
    ok(desk.api.post("/api/rmas", json={
        "customer_id": 1, "incident": 1, "model": "B300", "serial": "S1", "part": "disk",
        "contact": {"name": "Rep", "email": "rep@fuzz.test", "phone": "555"}, "shipping_address": "1 Main St",
        "country": "US"}), 201)
    ok(desk.api.post("/api/updates/appliances", json={
        "name": "fuzz-1", "customer_id": 1, "version": "1.1.0", "contact_email": "rep@fuzz.test"}), 201)
    return desk.token("fuzz-token", 1, "rep@fuzz.test")


@pytest.mark.req("ROB-02", "SEC-05")
def test_fuzzing_the_desk_api_finds_no_5xx_no_schema_mismatch_and_no_unauthenticated_success(desk_factory):
    desk = desk_factory()
    appliance_token = _seed(desk)
    doc = ok(desk.public.get("/api/openapi.json"))
    schema = schemathesis.openapi.from_dict(doc)
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        if not any(re.match(rx, label) for rx in EXCLUDED):
            ops.append((label, op, _schemes(doc, op)))
    # the document says which operations need credentials: all but the public ones
    assert {label for label, _op, reqs in ops if not reqs or not all(reqs)} == PUBLIC
    assert {label for label, _op, reqs in ops if {"appliance_token"} in reqs} == APPLIANCE
    staff_only = {label for label, _op, _reqs in ops} - PUBLIC - APPLIANCE
    assert len(staff_only) >= 25, sorted(staff_only)
    login = ok(desk.public.post("/api/login", json={"username": "alice", "password": "desk-pass-1234"}))
    desk.public.cookies.clear()

    failures: list[str] = []
    calls = 0
    successes: dict[str, set[str]] = {}

    def check(who: str, label: str):
        def on_response(case, response):
            nonlocal calls
            calls += 1
            if (why := failure(case, response, CHECKS)) is not None:
                failures.append(f"{label} [{who}]: {why}")
            if 200 <= response.status_code < 300:
                successes.setdefault(who, set()).add(label)
        return on_response

    # callers without the staff session first (the staff run below changes the seeded rows)
    callers = {"anonymous": {}, "appliance": {"Authorization": f"Bearer {appliance_token}"},
               "cookie without CSRF": {"Cookie": f"desk_session={login['token']}"}}
    with requests.Session() as session:
        for who, headers in callers.items():
            for label, op, _reqs in ops:
                run_operation(op, desk.url, session, headers, 2, check(who, label))
        for label, op, _reqs in ops:
            run_operation(op, desk.url, session, dict(desk.api.headers), 5, check("staff", label))
    assert not failures, f"{len(failures)} failures in {calls} calls:\n" + "\n".join(failures[:40])

    # without the staff session: the public operations only; an appliance token its own too; the staff
    # cookie without its CSRF header reads, and changes nothing
    assert successes.get("anonymous", set()) <= PUBLIC, sorted(successes["anonymous"] - PUBLIC)
    assert successes.get("appliance", set()) <= PUBLIC | APPLIANCE, sorted(successes["appliance"] - PUBLIC - APPLIANCE)
    changed = {label for label in successes.get("cookie without CSRF", set()) - PUBLIC if not label.startswith("GET ")}
    assert not changed, sorted(changed)
    # not vacuous: the callers did reach the desk (public operations answered them, the cookie read), the
    # staff session did reach most staff-only operations, and the run made its calls
    assert {"GET /api/health", "GET /api/releases"} <= successes.get("anonymous", set())
    assert {"GET /api/me", "GET /api/customers"} <= successes.get("cookie without CSRF", set())
    assert len(successes.get("staff", set()) & staff_only) >= len(staff_only) // 2, \
        sorted(staff_only - successes.get("staff", set()))
    assert calls >= 200, calls
    # the credentials the run used are still good: refusals were not for a dead session or token
    assert desk.api.get("/api/customers").status_code == 200
    assert desk.public.get("/api/me", headers=callers["cookie without CSRF"]).status_code == 200
    assert desk.public.get("/api/updates/appliances/fuzz-1", headers=callers["appliance"]).status_code == 200
