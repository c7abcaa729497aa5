"""peer_auth: keys, request signatures and every refusal, the nonce cache,
the failure limiter and answer signatures (SEC-04)."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from tether.core.errors import Invalid, Throttled, Unauthorized
from tether.failover import peer_auth as A
from tether.failover.errors import PeerAuthError

from .conftest import PSK

pytestmark = pytest.mark.req("SEC-04")

METHOD, TARGET, BODY, SENDER = "POST", "/peer/v1/ack?x=1", b'{"through":42}', "peer-a"


@pytest.fixture
def verifier(key, fake_clock) -> A.PeerVerifier:
    return A.PeerVerifier(lambda: key, 30, fake_clock)


@pytest.fixture
def signed(key, fake_clock) -> dict[str, str]:
    return A.sign_request(key, SENDER, METHOD, TARGET, BODY, fake_clock.now)


def refusal(verifier: A.PeerVerifier, headers, method=METHOD, target=TARGET, body=BODY) -> PeerAuthError:
    with pytest.raises(PeerAuthError) as e:
        verifier.verify(method, target, body, headers, "192.0.2.7")
    return e.value


# --- keys ---

def test_keys_are_derived_and_bounded():
    key = A.derive_key(PSK)
    assert len(key) == 32 and key != PSK.encode()[:32]
    assert A.key_id(PSK) == A.key_id_of(key) and len(A.key_id(PSK)) == 16
    assert A.key_id(PSK) not in key.hex()
    assert A.key_id(PSK + "!") != A.key_id(PSK)
    assert A.derive_key("e\u0301" * 32) == A.derive_key("\u00e9" * 32)  # NFC: the same key however typed
    for bad in ("x" * 31, "x" * 257):
        with pytest.raises(Invalid) as e:
            A.derive_key(bad)
        assert e.value.field == "psk"
    assert A.derive_key("x" * 32) and A.derive_key("x" * 256)


# --- requests ---

def test_signature_round_trip(verifier, signed, key):
    assert set(signed) == set(A.REQUEST_HEADERS)
    assert signed[A.H_VERSION] == "1" and signed[A.H_ID] == SENDER and signed[A.H_KEY_ID] == A.key_id(PSK)
    assert signed[A.H_TIME] == "1800000000" and len(signed[A.H_NONCE]) == 32
    assert verifier.verify(METHOD, TARGET, BODY, signed, "192.0.2.7") == SENDER
    other = A.sign_request(key, SENDER, "get", "/peer/v1/changes", b"", verifier.clock())
    assert other[A.H_NONCE] != signed[A.H_NONCE]
    lower = Headers({k.lower(): v for k, v in other.items()})  # header names are case-insensitive
    assert verifier.verify("GET", "/peer/v1/changes", b"", lower, None) == SENDER


def test_wrong_key_names_both_key_ids(verifier, fake_clock):
    other = A.derive_key("another pre-shared key, also long enough")
    e = refusal(verifier, A.sign_request(other, SENDER, METHOD, TARGET, BODY, fake_clock.now))
    assert e.reason == "key" and A.key_id_of(other) in e.message and A.key_id(PSK) in e.message
    assert e.hint == A.KEY_HINT


@pytest.mark.parametrize("change", ["body", "target", "query", "method", "sender", "time", "nonce", "signature"])
def test_any_change_breaks_the_signature(verifier, signed, change):
    headers, method, target, body = dict(signed), METHOD, TARGET, BODY
    if change == "body":
        body = b'{"through":43}'
    elif change == "target":
        target = "/peer/v1/unpair?x=1"
    elif change == "query":
        target = "/peer/v1/ack?x=2"
    elif change == "method":
        method = "PUT"
    elif change == "sender":
        headers[A.H_ID] = "peer-c"
    elif change == "time":
        headers[A.H_TIME] = str(int(headers[A.H_TIME]) + 1)
    elif change == "nonce":
        headers[A.H_NONCE] = "0" * 32
    else:
        headers[A.H_SIGNATURE] = "0" * 64
    assert refusal(verifier, headers, method, target, body).reason == "signature"


@pytest.mark.parametrize("offset", [-31, 31])
def test_stale_either_way(verifier, signed, fake_clock, offset):
    fake_clock.now += offset
    e = refusal(verifier, signed)
    assert e.reason == "stale" and "±30 s" in e.message and f"{offset:+d} s" in e.message


@pytest.mark.parametrize("offset", [-30, 30])
def test_edge_of_the_window_is_accepted(verifier, signed, fake_clock, offset):
    fake_clock.now += offset
    assert verifier.verify(METHOD, TARGET, BODY, signed, None) == SENDER


def test_replayed_nonce_is_refused_then_stale(verifier, signed, fake_clock):
    verifier.verify(METHOD, TARGET, BODY, signed, None)
    assert refusal(verifier, signed).reason == "replay"
    fake_clock.now += 31
    assert refusal(verifier, signed).reason == "stale"


def test_replay_from_many_threads_is_accepted_once(verifier, signed):
    results: list[str] = []

    def attempt():
        try:
            results.append(verifier.verify(METHOD, TARGET, BODY, signed, None))
        except PeerAuthError as e:
            results.append(e.reason)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [SENDER] + ["replay"] * 15


@pytest.mark.parametrize("header", A.REQUEST_HEADERS)
def test_missing_header(verifier, signed, header):
    headers = {k: v for k, v in signed.items() if k != header}
    e = refusal(verifier, headers)
    assert e.reason == "missing" and header in e.message


@pytest.mark.parametrize("header, value", [(A.H_TIME, "1.5"), (A.H_TIME, "-3"), (A.H_NONCE, "ABCD" * 8),
                                           (A.H_NONCE, "00"), (A.H_KEY_ID, "xyz"), (A.H_ID, "a b"),
                                           (A.H_ID, "a\nb")])
def test_malformed_header(verifier, signed, header, value):
    e = refusal(verifier, {**signed, header: value})
    assert e.reason == "missing" and "malformed" in e.message


def test_header_given_twice(verifier, signed):
    raw = [(k.lower().encode(), v.encode()) for k, v in signed.items()]
    raw.append((A.H_NONCE.lower().encode(), b"0" * 32))
    e = refusal(verifier, Headers(raw=raw))
    assert e.reason == "missing" and "more than once" in e.message


def test_unknown_version(verifier, signed):
    e = refusal(verifier, {**signed, A.H_VERSION: "2"})
    assert e.reason == "version" and "'2'" in e.message


def test_no_key_set(signed, fake_clock):
    assert refusal(A.PeerVerifier(lambda: None, clock=fake_clock), signed).reason == "no_key"


def test_own_id_is_refused(key, signed, fake_clock):
    assert refusal(A.PeerVerifier(lambda: key, clock=fake_clock, own_id=SENDER), signed).reason == "reflected"


def test_nonce_cache_full_refuses_then_frees(key, fake_clock):
    verifier = A.PeerVerifier(lambda: key, 30, fake_clock, max_nonces=3)

    def fresh(at=None):
        return A.sign_request(key, SENDER, METHOD, TARGET, BODY, fake_clock.now if at is None else at)

    early = fresh(fake_clock.now - 20)
    verifier.verify(METHOD, TARGET, BODY, early, None)
    for _ in range(2):
        verifier.verify(METHOD, TARGET, BODY, fresh(), None)
    e = refusal(verifier, fresh())
    assert e.reason == "busy" and e.status == 503
    assert len(verifier._nonces) == 3
    fake_clock.now += 11  # the early request's time has left the window: its nonce is forgotten
    assert verifier.verify(METHOD, TARGET, BODY, fresh(), None) == SENDER
    assert len(verifier._nonces) == 3


def test_request_target_from_an_asgi_scope():
    assert A.request_target(b"/peer/v1/changes", b"after=5") == "/peer/v1/changes?after=5"
    assert A.request_target(b"/peer/v1/ack", b"") == "/peer/v1/ack"


def test_sign_request_refuses_what_cannot_be_signed(key):
    with pytest.raises(ValueError, match="sender id"):
        A.sign_request(key, "a\nb", METHOD, TARGET, BODY)
    with pytest.raises(ValueError, match="target"):
        A.sign_request(key, SENDER, METHOD, "/a b", BODY)


def test_refusal_body_and_status():
    e = PeerAuthError("stale", "too old", hint="fix the fake_clock")
    assert isinstance(e, Unauthorized) and e.status == 401 and e.exit_code == 3
    assert e.to_dict() == {"error": "peer_auth", "reason": "stale", "message": "too old", "hint": "fix the fake_clock"}
    with pytest.raises(ValueError):
        PeerAuthError("nonsense", "x")


# --- the failure limiter ---

def test_limiter_blocks_after_ten_failures_per_minute(fake_clock):
    limiter = A.FailureLimiter(clock=fake_clock)
    for _ in range(9):
        limiter.failed("192.0.2.7")
    assert not limiter.blocked("192.0.2.7")
    limiter.failed("192.0.2.7")
    assert limiter.blocked("192.0.2.7") and not limiter.blocked("192.0.2.8")
    assert limiter.retry_after("192.0.2.7") == 60
    fake_clock.now += 59.5
    assert limiter.blocked("192.0.2.7") and limiter.retry_after("192.0.2.7") == 1
    fake_clock.now += 0.5
    assert not limiter.blocked("192.0.2.7") and limiter.retry_after("192.0.2.7") == 0
    assert limiter.tracked() == 0  # forgotten once nothing is recent


def test_limiter_memory_is_bounded(fake_clock):
    limiter = A.FailureLimiter(max_failures=2, max_addresses=100, clock=fake_clock)
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
        limiter.failed("192.0.2.7")  # keeps failing: the most recent, never the one forgotten
    assert limiter.tracked() == 100 and limiter.blocked("192.0.2.7")
    assert len(limiter._failures["192.0.2.7"]) == 2


def test_verifier_counts_failures_and_refuses_a_blocked_address(key, signed, fake_clock):
    limiter = A.FailureLimiter(clock=fake_clock)
    verifier = A.PeerVerifier(lambda: key, clock=fake_clock, limiter=limiter)
    for _ in range(10):
        refusal(verifier, {**signed, A.H_SIGNATURE: "0" * 64})
    with pytest.raises(Throttled) as e:
        verifier.verify(METHOD, TARGET, BODY, signed, "192.0.2.7")  # even a good request, while blocked
    assert e.value.retry_after == 60 and "192.0.2.7" in e.value.message
    assert verifier.verify(METHOD, TARGET, BODY, signed, "192.0.2.8") == SENDER


# --- answers ---

def test_response_signature(key):
    nonce = "0123456789abcdef0123456789abcdef"
    sig = A.sign_response(key, nonce, 200, b'{"ok":true}')
    A.verify_response(key, nonce, 200, b'{"ok":true}', sig)
    for args in ((nonce, 201, b'{"ok":true}', sig), (nonce, 200, b'{"ok":false}', sig),
                 ("f" * 32, 200, b'{"ok":true}', sig), (nonce, 200, b'{"ok":true}', None),
                 (nonce, 200, b'{"ok":true}', sig.upper())):
        with pytest.raises(PeerAuthError) as e:
            A.verify_response(key, *args)
        assert e.value.reason == "signature"
    with pytest.raises(PeerAuthError):
        A.verify_response(A.derive_key("another pre-shared key, also long enough"), nonce, 200,
                          b'{"ok":true}', sig)


def test_request_and_response_signatures_never_coincide(key):
    """Domain separation: the two canonical strings differ in their first line."""
    assert A.canonical_request("GET", "/", "0" * 64, 0, "0" * 32, "x").split("\n")[0] == "tether-peer-v1"
    assert A.canonical_response("0" * 32, 200, "0" * 64).split("\n")[0] == "tether-peer-v1 response"


# --- the worked example of docs/formats/peer-protocol.md ---

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats" / "peer-protocol.md"


def doc_example(name: str) -> str:
    found = re.search(rf"<!-- example: {name} -->\n```text\n(.*?)\n```", DOC.read_text(), re.S)
    assert found, f"no '{name}' example block in {DOC.name}"
    return found.group(1)


def doc_fields(name: str) -> dict[str, str]:
    return dict(re.fullmatch(r"(\S+(?: \S+)*) {2,}(.*)", line).groups() for line in doc_example(name).splitlines())


def test_the_documented_example_matches_the_code():
    req, resp = doc_fields("request"), doc_fields("response")
    key = A.derive_key(req["psk"])
    assert key.hex() == req["mac key"] and A.key_id(req["psk"]) == req["key id"]
    body = req["body"].encode()
    assert hashlib.sha256(body).hexdigest() == req["body sha256"]
    assert A.canonical_request(req["method"], req["target"], req["body sha256"], int(req["time"]), req["nonce"],
                               req["sender id"]) == doc_example("canonical request")
    headers = A.sign_request(key, req["sender id"], req["method"], req["target"], body, int(req["time"]),
                             nonce=req["nonce"])
    assert "\n".join(f"{k}: {v}" for k, v in headers.items()) == doc_example("headers")
    verifier = A.PeerVerifier(lambda: key, clock=lambda: int(req["time"]) + 29)
    assert verifier.verify(req["method"], req["target"], body, headers, None) == req["sender id"]

    status, answer = int(resp["status"]), resp["body"].encode()
    assert hashlib.sha256(answer).hexdigest() == resp["body sha256"]
    assert A.canonical_response(req["nonce"], status, resp["body sha256"]) == doc_example("canonical response")
    assert A.sign_response(key, req["nonce"], status, answer) == resp["signature"]
    A.verify_response(key, req["nonce"], status, answer, resp["signature"])
