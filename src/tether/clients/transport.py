"""The clients' side of the channel: where the site is (the hostname,
re-resolved at every attempt, through an optional hosts-format override
file first), whether to trust it (CL-02: the pin or the root, checked before
any credential is sent), the WebSocket connection with its hello, and the
capped exponential backoff with full jitter between attempts (CL-03)."""

from __future__ import annotations

import asyncio
import os
import http.client
import ipaddress
import json
import logging
import random
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from tether import __version__
from tether.core import netaddr

from . import protocol as P
from .trust import UntrustedCertificate, check_peer, client_context

log = logging.getLogger("tether.client")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
STABLE_AFTER = 60.0  # a connection that lasted this long resets the backoff


class Refused(Exception):
    """The site answered the hello with an error (``code``, ``retry_after`` for busy)."""

    def __init__(self, frame: dict, close_code: int | None = None):
        super().__init__(frame.get("message") or frame.get("code") or "refused")
        self.code = frame.get("code", "refused")
        self.retry_after = frame.get("retry_after")
        self.close_code = close_code


def split_site(site: str, default_port: int = 443) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port``."""
    host, sep, port = site.rpartition(":")
    if sep and port.isdigit() and (not host.count(":") or host.startswith("[")):
        return host.strip("[]"), int(port)
    return site.strip("[]"), default_port


def read_hosts_file(path: Path | None, hostname: str) -> str | None:
    if path is None:
        return None
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and hostname.lower() in (f.lower() for f in fields[1:]):
            return fields[0]
    return None


async def resolve(hostname: str, port: int, hosts_file: Path | None = None) -> str:
    """The address to try now: an IP literal as is, else the override file, else the system resolver."""
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    found = read_hosts_file(hosts_file, hostname)
    if found:
        return found
    server = os.environ.get(DNS_SERVER_ENV)
    if server:
        return await resolve_with(server, hostname)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:  # the resolver's own text never names the host
        raise OSError(f"cannot resolve the site's host name {hostname}: {exc.strerror or exc}") from None
    return infos[0][4][0]


async def resolve_with(server: str, hostname: str) -> str:
    """Ask the DNS server ``IP[:PORT]`` directly, without a cache: a swung record is seen at once."""
    import dns.asyncresolver
    import dns.exception

    ip, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "53")
    r = dns.asyncresolver.Resolver(configure=False)
    r.nameservers, r.port, r.lifetime, r.cache = [ip], int(port or 53), 3.0, None
    try:
        answer = await r.resolve(hostname, "A")
    except dns.exception.DNSException as exc:
        raise OSError(f"cannot resolve {hostname} through {server}: {exc}") from None
    return str(answer[0])


DNS_SERVER_ENV = "TETHER_DNS_SERVER"  # IP[:PORT]: resolve the site's name there (no cache), not through the system


class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    def __init__(self, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP, rng: random.Random | None = None):
        self.base, self.cap, self.n = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.n, 30)))
        self.n += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.n = 0


@dataclass
class Site:
    """Where a client's site is and how it is trusted."""

    hostname: str
    port: int
    trust: dict  # {"pin": "sha256/..."} or {"cacert": "<PEM>"}
    hosts_file: Path | None = None

    @property
    def url(self) -> str:
        return netaddr.url("wss", self.hostname, self.port, "/client")

    def context(self) -> ssl.SSLContext:
        return client_context(self.trust)

    async def open(self, hello: dict, open_timeout: float = 15.0,
                   on_challenge=None) -> tuple[ClientConnection, dict, str]:
        """Connect, check the certificate, send the hello: (connection, welcome, address used).
        ``on_challenge(message)`` (a coroutine function) answers a ``challenge`` frame (a one-time code
        the site's RADIUS server asks for); without it a challenge is a refusal."""
        address = await resolve(self.hostname, self.port, self.hosts_file)
        ws = await connect(self.url, ssl=self.context(), host=address, port=self.port,
                           server_hostname=self.hostname, open_timeout=open_timeout, ping_interval=None,
                           max_size=P.WS_MAX_SIZE, compression=None,
                           user_agent_header=f"tether-client/{__version__}")
        try:
            sslobj = ws.transport.get_extra_info("ssl_object")
            check_peer(self.trust, sslobj.getpeercert(binary_form=True) if sslobj else None)
            await ws.send(P.encode({"v": P.VERSION, "agent": f"tether/{__version__}", **hello, "type": "hello"}))
            first = await asyncio.wait_for(ws.recv(), open_timeout)
            frame = P.decode(first) if isinstance(first, str) else {}
            while frame.get("type") == "challenge" and on_challenge is not None:
                answer = await on_challenge(str(frame.get("message") or "One-time code"))
                await ws.send(P.encode({"type": "challenge_response", "response": answer}))
                first = await asyncio.wait_for(ws.recv(), open_timeout)
                frame = P.decode(first) if isinstance(first, str) else {}
            if frame.get("type") != "welcome":
                try:
                    await asyncio.wait_for(ws.wait_closed(), 2)
                except asyncio.TimeoutError:
                    pass
                raise Refused(frame, ws.close_code)
        except BaseException:
            await ws.close()
            raise
        return ws, frame, address

    def register(self, token: str, kind: str, hostname: str, os_name: str, timeout: float = 20.0) -> dict:
        """POST /client/register over HTTPS with the same trust; the certificate is checked before the
        token leaves this machine."""
        address = asyncio.run(resolve(self.hostname, self.port, self.hosts_file))
        raw = socket.create_connection((address, self.port), timeout=timeout)
        try:
            tls = self.context().wrap_socket(raw, server_hostname=self.hostname)
        except BaseException:
            raw.close()
            raise
        conn = http.client.HTTPSConnection(self.hostname, self.port, timeout=timeout)
        try:
            check_peer(self.trust, tls.getpeercert(binary_form=True))
            conn.sock = tls
            body = json.dumps({"token": token, "kind": kind, "hostname": hostname, "os": os_name})
            conn.request("POST", "/client/register", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            try:
                answer = P.load_json(data)  # the same depth-limited reader as the appliance's
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            if resp.status != 201:
                raise Refused({"code": answer.get("error", str(resp.status)),
                               "message": answer.get("message") or f"HTTP {resp.status}"})
            return answer
        finally:
            conn.close()
            tls.close()


def describe(exc: BaseException) -> str:
    if isinstance(exc, UntrustedCertificate):
        return f"refusing the site: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"refusing the site: {exc.verify_message or exc}"
    if isinstance(exc, Refused):
        return f"site refused: {exc.code}: {exc}"
    return f"{type(exc).__name__}: {exc}"
