"""PeerClient against a real HTTPS peer on loopback (conftest.peer): signed
requests, signed answers, the NDJSON stream, errors, and the certificate pin
checked in the handshake (FO-01, SEC-04)."""

from __future__ import annotations

import json
import socket
from urllib.parse import parse_qs

import httpx
import pytest

from tether.failover import peer_auth
from tether.failover.errors import PeerRefused, PeerUnreachable, PeerUntrusted, PinMismatch
from tether.failover.peer_client import PeerClient

pytestmark = pytest.mark.req("FO-01", "SEC-04")

SENDER = "peer-a"


@pytest.fixture
def client_for(peer, key):
    made: list[PeerClient] = []

    def make(pin: str | None = "peer", *, key_: bytes = key) -> PeerClient:
        c = PeerClient(peer.url, peer.pin if pin == "peer" else pin, key_, SENDER, timeout=5)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_signed_get_and_post_with_the_right_pin(peer, client_for):
    c = client_for()
    r = c.get("/peer/v1/echo", params={"after": 42, "q": "a b/ü&x=1"}, verify_response=True)
    assert r.json()["sender"] == SENDER
    path, _, query = r.json()["target"].partition("?")  # signed as sent (httpx's own percent-encoding)
    assert path == "/peer/v1/echo" and parse_qs(query) == {"after": ["42"], "q": ["a b/ü&x=1"]}
    r = c.post_json("/peer/v1/echo", {"through": 42, "name": "ü"}, verify_response=True)
    assert json.loads(r.json()["body"]) == {"through": 42, "name": "ü"}
    assert c.presented_pin == peer.pin


def test_stream_yields_ndjson_lines(client_for):
    with client_for().stream("GET", "/peer/v1/stream", {"after": 0}, read_timeout=5) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [m["head"] for m in lines] == [1, 2, 3]


def test_unpinned_client_records_the_presented_pin_and_keeps_to_it(peer, certs, client_for):
    c = client_for(None)
    assert c.presented_pin is None
    c.get("/peer/v1/echo")
    assert c.presented_pin == peer.pin
    peer.present(certs["other"])  # the next connection presents another key
    with pytest.raises(PinMismatch) as e:
        c.get("/peer/v1/echo")
    assert f"pinned {peer.pin}, presented {certs['other'].pin}" in str(e.value)
    assert c.presented_pin == peer.pin


def test_another_pin_is_refused_in_the_handshake_before_any_request(peer, certs, client_for):
    c = client_for(certs["other"].pin)
    with pytest.raises(PinMismatch) as e:
        c.post_json("/peer/v1/echo", {"secret": "never sent"})
    assert str(e.value) == (f"the peer at {peer.url} presented another certificate key: "
                            f"pinned {certs['other'].pin}, presented {peer.pin}")
    assert e.value.pinned == certs["other"].pin and e.value.presented == peer.pin
    assert e.value.hint and e.value.exit_code == 8
    assert c.presented_pin == peer.pin
    assert peer.seen == []  # no request reached the peer


def test_a_replaced_peer_certificate_is_refused(peer, certs, client_for):
    c = client_for()
    c.get("/peer/v1/echo")
    peer.present(certs["other"])
    with pytest.raises(PinMismatch):
        c.get("/peer/v1/echo")
    assert peer.seen == ["/peer/v1/echo"]


def test_every_answer_is_checked_against_its_connection():
    """Second line of defence: an answer without a TLS connection (a transport that bypassed the handshake
    check) is refused."""
    c = PeerClient("https://127.0.0.1:1", "sha256/" + "A" * 43, b"k" * 32, SENDER)
    try:
        with pytest.raises(PinMismatch, match="presented no certificate"):
            c._check_connection(httpx.Response(200))
    finally:
        c.close()


def test_a_forged_answer_signature_is_refused(client_for):
    c = client_for()
    c.get("/peer/v1/forged")  # not asked to verify: returned
    with pytest.raises(PeerUntrusted, match="failed authentication"):
        c.get("/peer/v1/forged", verify_response=True)


def test_refusals_carry_the_peers_reason_and_message(client_for):
    with pytest.raises(PeerRefused) as e:
        client_for(key_=peer_auth.derive_key("another pre-shared key, also long enough")).get("/peer/v1/echo")
    assert e.value.status_code == 401 and e.value.error == "peer_auth" and e.value.reason == "key"
    assert "different keys" in str(e.value) and e.value.hint == peer_auth.KEY_HINT
    with pytest.raises(PeerRefused, match=r"HTTP 404\): no such endpoint"):
        client_for().get("/peer/v1/missing")


def test_own_id_is_refused_as_reflected(peer, key):
    with PeerClient(peer.url, peer.pin, key, "peer-b") as c, pytest.raises(PeerRefused) as e:
        c.get("/peer/v1/echo")
    assert e.value.reason == "reflected"


def test_unreachable_peer_names_the_address(key):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    with PeerClient(url, None, key, SENDER, timeout=2) as c, pytest.raises(PeerUnreachable) as e:
        c.get("/peer/v1/echo")
    assert url in str(e.value) and e.value.address == url and e.value.hint


def test_only_https_and_real_pins_are_accepted(key):
    with pytest.raises(ValueError, match="https"):
        PeerClient("http://127.0.0.1:1", None, key, SENDER)
    with pytest.raises(ValueError, match="not a certificate pin"):
        PeerClient("https://127.0.0.1:1", "sha256/short", key, SENDER)
