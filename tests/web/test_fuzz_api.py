"""Schemathesis over the running appliance's OpenAPI documents (issue 19): every
operation of ``/api/openapi.json`` and ``/appliance/api/openapi.json`` is called
over HTTPS with generated input, with an all-permission session and with
single-scope API accounts. Fails on any 5xx, any status code the document does
not declare, any JSON body not matching its declared schema, and any
out-of-scope success. Bounded: a few examples per operation, no shrinking, no
example database."""

from __future__ import annotations

import re

import pytest
import requests
import requests.adapters
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from tests.fuzzing import failure, run_operation
from tests.helpers import api_token, ok, pinned_context

# operations that would destroy the fixture the rest of the run needs, or reach outside loopback
EXCLUDED = {
    "site": [
        r"POST /restore",  # replaces the whole site
        r"POST /session/password", r"PUT /users/\{username\}/password",  # the token's own user's password
        r"DELETE /session", r"DELETE /api-accounts/",  # would revoke the tokens this test uses
        r"PUT /config/settings/security",  # lockout / two-factor / session limits for every later call
        r"PUT /config/settings/failover", r"POST /failover/", r"POST /command/set_failover_role",  # role changes
        r"POST /config/security-providers/\{name\}/test",  # connects to generated (non-loopback) hosts
        r"(POST|PUT) /config/event-targets",  # would deliver events to generated URLs
    ],
    "appliance": [
        r"POST /password", r"DELETE /session",  # the admin's own password and session
        r"PUT /(networking|security)",  # listen addresses, admin networks: would lock the test out
        r"PUT /support", r"POST /support/incident",  # reports to a generated desk URL (outside loopback)
        r"PUT /storage",  # checks a generated S3 endpoint URL (outside loopback)
        r"POST /(config/import|factory-reset|shutdown|site-package|snapshot|kit)",  # replace or stop the appliance; heavy downloads
        r"POST /drills",  # each drill starts scratch appliance processes for many seconds (tests/dr: bad input)
    ],
}
SCOPES = ("backup", "command", "reporting", "config:read", "config:write", "users:manage")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class _Pinned(requests.adapters.HTTPAdapter):
    """The appliance's built-in certificate as the only trust anchor; it names no loopback address,
    so the host name is not checked (as tests.helpers.pinned_context)."""

    def __init__(self, cert_path: str):
        self.ctx = pinned_context(cert_path)
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs.update(ssl_context=self.ctx, assert_hostname=False)
        return super().init_poolmanager(*args, **kwargs)


def _operations(schema, face: str):
    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        if not any(re.match(rx, label) for rx in EXCLUDED[face]):
            yield label, op


@pytest.fixture
def fuzz_target(ready_site):
    a, c, ah, sh = ready_site
    scoped = {}
    for perm in SCOPES:
        acct = ok(c.post("/api/api-accounts", headers=sh, json={
            "name": f"fuzz-{perm.replace(':', '-')}", "permissions": [perm]}), 201)
        scoped[perm] = {"Authorization": f"Bearer {api_token(c, acct['client_id'], acct['client_secret'])}"}
    session = requests.Session()
    session.verify = a.cert_path
    session.mount("https://", _Pinned(a.cert_path))
    schemas = {}
    for face, prefix in (("site", "/api"), ("appliance", "/appliance/api")):
        doc = ok(c.get(f"{prefix}/openapi.json"))
        schemas[face] = (schemathesis.openapi.from_dict(doc), a.url + prefix)
    yield schemas, session, {"site": sh, "appliance": ah}, scoped
    session.close()


@pytest.mark.req("ROB-02", "SEC-05")
def test_fuzzing_the_openapi_documents_finds_no_5xx_no_schema_mismatch_and_no_out_of_scope_success(fuzz_target):
    schemas, session, full, scoped = fuzz_target
    failures: list[str] = []
    calls = 0

    def validate(label):
        def check(case, response):
            nonlocal calls
            calls += 1
            if (why := failure(case, response, CHECKS)) is not None:
                failures.append(f"{label}: {why}")
        return check

    # every operation with the face's all-permission login: no 5xx, the response as documented
    for face, (schema, base) in schemas.items():
        for label, op in _operations(schema, face):
            run_operation(op, base, session, full[face], 4, validate(f"{face} {label}"))
    assert not failures, f"{len(failures)} failures in {calls} calls:\n" + "\n".join(failures[:30])

    # single-scope API accounts: no 5xx ever; an operation is open to every caller (all six reach it)
    # or to one scope at most, and no site API account reaches a non-public /appliance API operation
    successes: dict[str, set[str]] = {}

    def record(face, label, perm):
        def check(case, response):
            nonlocal calls
            calls += 1
            if response.status_code >= 500:
                failures.append(f"{face} {label} [{perm}]: {response.status_code} {response.text[:200]}")
            if 200 <= response.status_code < 300:
                successes.setdefault(f"{face} {label}", set()).add(perm)
        return check

    for face, (schema, base) in schemas.items():
        for label, op in _operations(schema, face):
            for perm, headers in scoped.items():
                run_operation(op, base, session, headers, 1, record(face, label, perm))
    assert not failures, "\n".join(failures[:30])
    public = {k for k, perms in successes.items() if perms == set(SCOPES)}
    for key, perms in successes.items():
        if key in public:
            continue
        if key.startswith("appliance "):
            assert not perms, f"{key} answered a site API account {sorted(perms)}"
        assert len(perms) <= 1, f"{key} is open to several single scopes: {sorted(perms)}"
    # the rule above is not vacuous: single-scope accounts did reach scoped operations
    assert sum(1 for k, perms in successes.items() if k not in public) >= 20, successes
