"""Issue 19 item 2: one source cannot exhaust the appliance. A source holds at
most its limit of connections (``security.connections.max_per_source``);
a connection that never completes its TLS handshake, or trickles its
headers, is dropped after its timeout; and near the descriptor limit the
longest-held unproven connections make way, so /health still answers a
flood of idle connections from many sources."""

from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers import ApplianceProc, first_admin_login, pinned_context, run_cli, wait_for

SOURCES = [f"127.0.19.{i}" for i in range(1, 20)]  # client source addresses no other test uses


def _addr(a: ApplianceProc) -> tuple[str, int]:
    u = urlsplit(a.url)
    return u.hostname, u.port


def _tcp(addr, source: str, timeout: float = 5) -> socket.socket:
    return socket.create_connection(addr, timeout=timeout, source_address=(source, 0))


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), or None if it held it ``seconds`` long."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return time.monotonic() - t0
    return None


def _health(a: ApplianceProc, source: str) -> int:
    """/check_health from ``source``: its status (the appliance answered) or raises."""
    transport = httpx.HTTPTransport(local_address=source, verify=pinned_context(a.cert_path))
    with httpx.Client(transport=transport, timeout=5) as c:
        return c.get(a.url + "/check_health").status_code


def _set_connections(c: httpx.Client, ah: dict, **values) -> None:
    sec = c.get("/appliance/api/security", headers=ah).json()
    sec["connections"].update(values)
    r = c.put("/appliance/api/security", headers=ah, json=sec)
    assert r.status_code == 200, r.text


@pytest.mark.req("ROB-02")
def test_per_source_limit_and_timeouts(appliance):
    a = appliance
    c = a.client()
    ah = first_admin_login(c)
    # the settings document the defaults (room for a NAT of many jump clients)
    assert c.get("/appliance/api/security", headers=ah).json()["connections"] == {
        "max_per_source": 2000, "handshake_timeout_seconds": 10, "header_timeout_seconds": 15}
    r = c.put("/appliance/api/security", headers=ah, json={
        **c.get("/appliance/api/security", headers=ah).json(), "connections": {"max_per_source": 0}})
    assert r.status_code == 422 and r.json()["field"].startswith("connections.max_per_source"), r.text
    _set_connections(c, ah, max_per_source=40, handshake_timeout_seconds=3, header_timeout_seconds=2)
    addr = _addr(a)

    # one source: 40 connections held, every one after that closed at once
    held = [_tcp(addr, SOURCES[0]) for _ in range(40)]
    time.sleep(0.3)
    extra = [_tcp(addr, SOURCES[0]) for _ in range(20)]
    assert all(_closed_within(s, 2) is not None for s in extra)
    with pytest.raises(httpx.TransportError):
        _health(a, SOURCES[0])  # that source is at its limit
    assert _health(a, SOURCES[1]) == 500  # no site yet: /check_health answers 500 with its line; it answers
    # idle TCP connections (no ClientHello) are dropped at the handshake timeout (3 s), not after 60 s
    took = [_closed_within(s, 8) for s in held]
    assert all(t is not None for t in took), took
    for s in held + extra:
        s.close()
    # the source's slots came back: it is served again
    wait_for(lambda: _health(a, SOURCES[0]) == 500, timeout=10, what="the source served again")

    # TLS done, then the headers trickled one line a second: dropped at the header timeout (2 s)
    with pinned_context(a.cert_path).wrap_socket(_tcp(addr, SOURCES[2]), server_hostname="localhost") as tls:
        tls.sendall(b"GET /check_health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        closed = False
        try:
            while time.monotonic() - t0 < 10:
                time.sleep(0.5)
                tls.sendall(b"X-Slow: 1\r\n")
        except (OSError, ssl.SSLError):
            closed = True
        assert closed and time.monotonic() - t0 < 6, time.monotonic() - t0
    # a kept-alive connection that then goes quiet is closed too; a prompt request is answered
    with httpx.Client(transport=httpx.HTTPTransport(local_address=SOURCES[3], verify=pinned_context(a.cert_path)),
                      timeout=5) as k:
        assert k.get(a.url + "/check_health").status_code == 500
    c.close()


@pytest.mark.req("ROB-02")
def test_health_answers_when_a_flood_exceeds_the_descriptor_limit(tmp_path, vendor):
    """An appliance limited to 1,024 descriptors, 1,400 idle connections from 14 sources (each under its
    limit): the oldest unproven ones make way, and /check_health from another address answers throughout."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    data = tmp_path / "appliance"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    a = ApplianceProc(data, ["127.0.0.1:0"], prefix=["prlimit", "--nofile=1024:1024", "--"]).start()
    socks = []
    try:
        addr = _addr(a)
        answered = []
        for i, source in enumerate(SOURCES[:14]):
            for _ in range(100):
                try:
                    socks.append(_tcp(addr, source, timeout=2))
                except OSError:
                    pass  # refused or timed out under the flood: the flood's problem
            answered.append(_health(a, SOURCES[18]))
        assert answered == [500] * 14  # every probe answered (no site: 500 and its line)
        assert len(socks) >= 1300  # the flood really was over the limit
        assert a.proc.poll() is None
    finally:
        for s in socks:
            s.close()
        a.stop()


@pytest.mark.req("ROB-02")
def test_idle_keep_alive_clients_do_not_hold_up_a_stop(appliance):
    """An administrator's idle HTTPS client (a keep-alive pool that is not reading) must not make SIGTERM
    wait for a TLS close_notify that never comes: uvicorn's graceful-shutdown time is 5 s."""
    clients = [appliance.client() for _ in range(3)]
    for c in clients:
        assert c.get("/health").status_code in (200, 503)  # each holds an idle keep-alive connection now
    t0 = time.monotonic()
    rc = appliance.stop()
    took = time.monotonic() - t0
    for c in clients:
        c.close()
    assert rc == 0
    assert took < 4, f"stop took {took:.1f} s with idle keep-alive clients (before the fix: 5-6 s)"
