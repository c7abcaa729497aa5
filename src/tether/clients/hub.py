"""The appliance's side of the client channel: who is connected (jump
clients, jumpoints, representatives), the hello and its checks, heartbeats,
the site-wide connection rate (CL-04), and the sessions relayed between a
representative and a jump client or jumpoint, each logged in the site's
history with its recording (SITE-03).

Test seam: ``TETHER_HELLO_TIMEOUT`` (seconds, > 0) replaces the 10 s a
connection has for its hello (``protocol.HELLO_TIMEOUT``), read when the hub
is made: for tests and drills, not for production.

The hub never touches a socket: the web layer hands it a ``Link`` per
connection (receive / send / close) and calls ``serve``. One hub per
appliance process; it lives on the server's event loop."""

from __future__ import annotations

import asyncio
import bisect
import collections
import ipaddress
import json
import logging
import os
import time
from typing import Callable, Protocol

from tether import __version__
from tether.core.errors import Conflict, NotFound, TetherError, Throttled, Unauthorized
from tether.site import sections
from tether.site.external import Challenge

from . import protocol as P
from .directory import Directory
from .recording import AsciicastRecorder

log = logging.getLogger("tether.clients")

SETTINGS_TTL = 2.0  # seconds between reads of the Jump client settings
ENDED_KEPT = 64  # ended channels a peer may still have frames in flight for
ACK_TIMEOUT = 15.0  # a jump client or jumpoint must answer shell.open / tunnel.open within this
SHUTDOWN_RETRY = 1.0  # seconds a client is told to wait before reconnecting after a planned stop
NOT_PRIMARY_RETRY = 2.0  # seconds a client refused by a backup appliance waits (a failover is on its way)
SWEEP_SECONDS = 2.0  # the housekeeping pass (heartbeat timeouts, last-seen writes)
ENV_HELLO_TIMEOUT = "TETHER_HELLO_TIMEOUT"
# identity look-ups of jump clients' and jumpoints' hellos in flight at once: within the site engine's
# connection pool (5 kept), so a storm of hellos queues here instead of opening and closing an overflow
# database connection for each (PERF-08)
HELLO_LOOKUPS = 4


def hello_timeout() -> float:
    """``protocol.HELLO_TIMEOUT``, or the test seam's value (see the module docstring)."""
    raw = os.environ.get(ENV_HELLO_TIMEOUT)
    if not raw:
        return P.HELLO_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < 3600:
        log.warning("%s=%r is not a number of seconds between 0 and 3600; ignored", ENV_HELLO_TIMEOUT, raw)
        return P.HELLO_TIMEOUT
    return value


class Link(Protocol):
    """One WebSocket connection, as the web layer gives it to the hub."""

    async def receive(self) -> str | bytes | None: ...  # None: the peer went away
    async def send_text(self, text: str) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int, reason: str = "") -> None: ...


class Peer:
    __slots__ = ("link", "role", "name", "ip", "hostname", "os", "perms", "heard", "channels", "closed", "ended")

    def __init__(self, link: Link, role: str, name: str, ip: str | None):
        self.link, self.role, self.name, self.ip = link, role, name, ip
        self.hostname = self.os = None
        self.perms: frozenset[str] = frozenset()
        self.heard = time.monotonic()
        self.channels: set[int] | None = None
        self.closed = False
        self.ended: dict[int, None] = {}  # its channels that ended lately (oldest first): frames may be in flight

    async def send(self, frame: dict) -> None:
        try:
            await self.link.send_text(P.encode(frame))
        except Exception:  # the connection is going away; its receive loop will notice
            pass

    async def send_data(self, data: bytes) -> None:
        try:
            await self.link.send_bytes(data)
        except Exception:
            pass


class Channel:
    __slots__ = ("id", "kind", "rep", "agent", "lsid", "recorder", "to_agent", "to_rep", "req_id", "open",
                 "target", "timer")

    def __init__(self, cid: int, kind: str, rep: Peer, agent: Peer, req_id: int, target: str):
        self.id, self.kind, self.rep, self.agent, self.req_id, self.target = cid, kind, rep, agent, req_id, target
        self.lsid: str | None = None
        self.recorder: AsciicastRecorder | None = None
        self.to_agent = self.to_rep = 0
        self.open = False
        self.timer: asyncio.TimerHandle | None = None


class Pacer:
    """CL-04: a token bucket of ``rate`` admissions per second (burst: one second's worth). A refused
    caller is given the time of the next free slot, so returning callers arrive spread at the rate."""

    def __init__(self):
        self.tokens: float | None = None
        self.t = 0.0
        self.next_slot = 0.0

    def admit(self, rate: int, now: float) -> float | None:
        if self.tokens is None:
            self.tokens, self.t = float(rate), now
        self.tokens = min(float(rate), self.tokens + (now - self.t) * rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        slot = max(now + (1.0 - self.tokens) / rate, self.next_slot + 1.0 / rate)
        self.next_slot = slot
        return slot - now


class ClientHub:
    """``site`` returns the installed site (or None); ``refusal`` returns why this appliance admits no
    client right now (e.g. it is the backup of a failover pair), or None when it admits them."""

    def __init__(self, site: Callable[[], object | None], refusal: Callable[[], str | None] = lambda: None):
        self._site = site
        self._refusal = refusal
        self.agents: dict[tuple[str, str], Peer] = {}
        self.reps: set[Peer] = set()
        self.channels: dict[int, Channel] = {}
        self._next_channel = 1
        self.pacer = Pacer()
        self.refused_busy = 0
        self._settings: tuple = (None, 0.0, 50, 30, None)  # (site read, read at, rate, heartbeat, site name)
        self._seen: dict[tuple[str, str], tuple] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hello_timeout = hello_timeout()
        self.admitted: collections.deque[float] = collections.deque(maxlen=4096)  # wall times of the last welcomes
        self._lookups = asyncio.Semaphore(HELLO_LOOKUPS)

    # --- status ------------------------------------------------------------------------------
    def counts(self) -> dict:
        jump = sum(1 for k in self.agents if k[0] == "jump")
        return {"representatives": len(self.reps), "jump_clients": jump, "jumpoints": len(self.agents) - jump}

    def first_admitted_since(self, since: float) -> float | None:
        """The wall time of the first client welcomed at or after ``since`` (the drill's "clients back")."""
        seen = tuple(self.admitted)  # a copy: the loop appends while a failover thread asks (ascending times)
        i = bisect.bisect_left(seen, since)
        return seen[i] if i < len(seen) else None

    def online(self, kind: str, name: str) -> bool:
        return (kind, name) in self.agents

    def settings(self) -> tuple[int, int]:
        """(connection rate per second, heartbeat seconds) from the site's Jump client settings."""
        return self._read_settings()[:2]

    def _read_settings(self) -> tuple[int, int, str | None]:
        """(rate, heartbeat, site name), read from the site at most every ``SETTINGS_TTL`` seconds (and at
        once when another site object is installed: a restore): the hello reads them, and a storm of hellos
        must not read the site database for each."""
        site_obj, at, rate, hb, name = self._settings
        now = time.monotonic()
        site = self._site()
        if now - at > SETTINGS_TTL or site is not site_obj:
            if site is not None:
                try:
                    s = sections.get_model(site.engine, sections.section("jump-clients"))
                    rate, hb = s.connection_rate_per_second, s.heartbeat_seconds
                    name = site.info().name
                except Exception:  # keep the last known values
                    log.exception("reading the jump client settings")
            self._settings = (site, now, rate, hb, name)
        return rate, hb, name

    # --- one connection ------------------------------------------------------------------------
    async def serve(self, link: Link, ip: str | None) -> None:
        """Run one client connection from its hello to its end."""
        self._start()
        peer = None
        try:
            first = await asyncio.wait_for(link.receive(), self.hello_timeout)
            if first is None:
                return
            if not isinstance(first, str):
                raise P.bad("the first frame must be a JSON 'hello'")
            peer = await self._hello(link, P.decode(first), ip)
            while True:
                msg = await link.receive()
                if msg is None:
                    return
                try:
                    if isinstance(msg, str):
                        await self._on_text(peer, P.decode(msg))
                    else:
                        await self._on_data(peer, msg)
                except P.ProtocolError as e:
                    if e.close is not None:
                        raise
        except asyncio.TimeoutError:
            await self._refuse(link, P.bad(f"no 'hello' within {self.hello_timeout:g} seconds", "hello_timeout"))
        except P.ProtocolError as e:
            if e.close is None:
                e.close = P.BAD_FRAME
            await self._refuse(link, e)
        except Exception:  # a bug, not the peer's fault: it still gets an error frame before the close
            log.exception("serving a client connection from %s", ip)
            await self._refuse(link, P.ProtocolError("internal", "the appliance failed to handle a frame", 1011))
        finally:
            if peer is not None:
                await self._gone(peer)

    async def _refuse(self, link: Link, e: P.ProtocolError) -> None:
        try:
            await link.send_text(P.encode(e.frame()))
            await link.close(e.close or P.BAD_FRAME, e.code)
        except Exception:
            pass

    async def _hello(self, link: Link, hello: dict, ip: str | None) -> Peer:
        if hello.get("type") != "hello":
            raise P.bad(f"expected 'hello', got {hello.get('type')!r}")
        v = hello.get("v")
        if type(v) is not int:  # not True, not 1.0: JSON integers only
            raise P.bad(f"'v' must be an integer protocol version, not {json.dumps(v)[:32]}")
        if v not in P.SUPPORTED_VERSIONS:
            raise P.ProtocolError("unsupported_version", f"protocol version {hello.get('v')!r} is not spoken here",
                                  P.UNSUPPORTED, versions=list(P.SUPPORTED_VERSIONS))
        role = P.field(hello, "role", str)
        if role not in P.ROLES:
            raise P.bad(f"role: one of {', '.join(P.ROLES)}")
        site = self._site()
        if site is None:
            raise P.ProtocolError("no_site", "no site is installed on this appliance", P.UNAVAILABLE)
        refusal = self._refusal()
        if refusal is not None:
            raise P.ProtocolError("not_primary", refusal, P.UNAVAILABLE, retry_after=NOT_PRIMARY_RETRY)
        directory = Directory(site.engine)
        rate, heartbeat, site_name = self._read_settings()
        if role in P.AGENT_ROLES:
            wait = self.pacer.admit(rate, time.monotonic())
            if wait is not None:
                self.refused_busy += 1
                raise P.ProtocolError("busy", f"the site admits {rate} client connections per second; retry later",
                                      P.BUSY, retry_after=round(wait, 3))
            cid = P.field(hello, "client_id", str, max_len=64)
            secret = P.field(hello, "secret", str, max_len=128)
            try:
                async with self._lookups:
                    kind, name = await asyncio.to_thread(directory.authenticate, cid, secret)
            except Unauthorized as e:
                raise P.ProtocolError("unauthorized", str(e), P.UNAUTHORIZED) from None
            except Conflict as e:
                raise P.ProtocolError("revoked", str(e), P.REVOKED) from None
            if kind != role:
                raise P.ProtocolError("unauthorized", f"this identity belongs to a {kind}, not a {role}", P.UNAUTHORIZED)
            peer = Peer(link, role, name, ip)
            peer.hostname = P.field(hello, "hostname", str, optional=True, max_len=253)
            peer.os = P.field(hello, "os", str, optional=True, max_len=64)
            old = self.agents.get((kind, name))
            if old is not None:
                await self._kick(old, P.ProtocolError("superseded", "the same identity connected again", P.SUPERSEDED))
            self.agents[(kind, name)] = peer
            self._seen[(kind, name)] = (time.time(), peer.hostname, peer.os, ip)
        else:
            username = P.field(hello, "username", str, max_len=64)
            password = P.field(hello, "password", str, max_len=1024)
            try:
                try:
                    login = await asyncio.to_thread(site.authn.authenticate, username, password, ip)
                except Challenge as c:
                    login = await self._answer_challenges(link, site, c, ip)
            except Throttled as e:
                raise P.ProtocolError("throttled", str(e), P.UNAUTHORIZED) from None
            except Unauthorized as e:
                raise P.ProtocolError("unauthorized", str(e), P.UNAUTHORIZED) from None
            user = login.user
            if user.must_change_password:
                raise P.ProtocolError("password_change_required",
                                      "change your password in /login before using the console", P.UNAUTHORIZED)
            peer = Peer(link, role, user.username, ip)
            peer.perms = await asyncio.to_thread(directory.rep_permissions, user.username, login.group_provider,
                                                login.groups)
            self.reps.add(peer)
            await asyncio.to_thread(site.audit.record, user.username, "rep.login", user.username, ip,
                                    {"agent": str(hello.get("agent", ""))[:64], "provider": login.provider})
        self.admitted.append(time.time())
        await peer.send({"type": "welcome", "v": P.VERSION, "site": site_name or site.info().name, "role": role,
                         "name": peer.name, "heartbeat": heartbeat, "server": f"tether/{__version__}"})
        return peer

    async def _answer_challenges(self, link: Link, site, c, ip: str | None):
        """A provider asks for a one-time code (RADIUS Access-Challenge): send the console a
        ``challenge`` frame and pass its ``challenge_response`` on, as often as the provider asks
        (at most ``P.MAX_CHALLENGES`` times)."""
        for _ in range(P.MAX_CHALLENGES):
            await link.send_text(P.encode({"type": "challenge", "message": c.message}))
            try:
                raw = await asyncio.wait_for(link.receive(), P.CHALLENGE_TIMEOUT)
            except asyncio.TimeoutError:
                raise P.ProtocolError("unauthorized", "no answer to the challenge in time", P.UNAUTHORIZED) from None
            if not isinstance(raw, str):
                raise P.bad("expected a JSON 'challenge_response'")
            frame = P.decode(raw)
            if frame.get("type") != "challenge_response":
                raise P.bad(f"expected 'challenge_response', got {frame.get('type')!r}")
            response = P.field(frame, "response", str, max_len=1024)
            try:
                return await asyncio.to_thread(site.authn.respond, c.token, response, ip)
            except Challenge as again:
                c = again
        raise P.ProtocolError("unauthorized", "too many challenges", P.UNAUTHORIZED)

    async def _kick(self, peer: Peer, e: P.ProtocolError) -> None:
        self._forget(peer)
        await self._end_channels(peer, e.code)
        await self._refuse(peer.link, e)

    def _forget(self, peer: Peer) -> None:
        if peer.closed:
            return
        peer.closed = True
        if peer.role == "rep":
            self.reps.discard(peer)
        elif self.agents.get((peer.role, peer.name)) is peer:
            del self.agents[(peer.role, peer.name)]
            self._seen[(peer.role, peer.name)] = (time.time(), None, None, None)

    async def _gone(self, peer: Peer) -> None:
        self._forget(peer)
        await self._end_channels(peer, "disconnected")

    # --- frames ----------------------------------------------------------------------------------
    async def _on_text(self, peer: Peer, f: dict) -> None:
        peer.heard = time.monotonic()
        t = f["type"]
        if t == "ping":
            await peer.send({"type": "pong"})
        elif t == "close":
            ch = self._channel_of(peer, P.int_field(f, "channel", 0, 2**32 - 1))
            if ch is not None:
                reason = str(f.get("reason") or "closed")[:32]
                await self._end(ch, reason, by=peer)
        elif peer.role == "rep" and t in ("list", "shell.open", "tunnel.open", "resize"):
            req = f.get("id")
            try:
                await getattr(self, "_rep_" + t.replace(".", "_"))(peer, f)
            except P.ProtocolError as e:
                if e.close is not None:
                    raise
                await peer.send(e.frame(req))
        elif peer.role != "rep" and t in ("channel.opened", "channel.failed"):
            ch = self._channel_of(peer, P.int_field(f, "channel", 0, 2**32 - 1))
            if ch is not None and not ch.open:
                if t == "channel.opened":
                    await self._opened(ch)
                else:
                    msg = str(f.get("message") or "failed")[:256]
                    await ch.rep.send({"type": "error", "id": ch.req_id, "code": "failed",
                                       "message": f"{ch.target}: {msg}"})
                    await self._end(ch, "failed", by=peer, notify=False)
        else:
            raise P.bad(f"unknown frame type {t!r} for a {peer.role}", "unknown_type")

    def _channel_of(self, peer: Peer, cid: int) -> Channel | None:
        ch = self.channels.get(cid)
        if ch is None:
            if cid not in peer.ended:
                raise P.bad(f"channel {cid} was never opened on this connection")
            return None  # this peer's channel, closed a moment ago: a frame in flight
        if peer is not ch.rep and peer is not ch.agent:
            raise P.bad(f"channel {cid} is not yours")
        return ch

    async def _on_data(self, peer: Peer, data: bytes) -> None:
        cid, payload = P.unpack(data)
        ch = self._channel_of(peer, cid)
        if ch is None:
            return
        if peer is ch.rep:
            ch.to_agent += len(payload)
            if ch.recorder is not None:
                ch.recorder.write("i", payload)
            await ch.agent.send_data(data)
        else:
            ch.to_rep += len(payload)
            if ch.recorder is not None:
                ch.recorder.write("o", payload)
            await ch.rep.send_data(data)

    # --- representative requests -------------------------------------------------------------------
    def _require(self, rep: Peer, *perms: str) -> None:
        missing = [p for p in perms if p not in rep.perms]
        if missing:
            raise P.ProtocolError("forbidden", f"{rep.name} lacks the {', '.join(missing)} permission "
                                               "(granted by a group policy in /login)")

    async def _rep_list(self, rep: Peer, f: dict) -> None:
        self._require(rep, "jump.use")
        directory = Directory(self._site().engine)
        jcs = await asyncio.to_thread(directory.jump_clients)
        jps = await asyncio.to_thread(directory.jumpoints)
        await rep.send({
            "type": "list.result", "id": f.get("id"),
            "jump_clients": [{"name": j["name"], "hostname": j["hostname"], "os": j["os"], "group": j["group_name"],
                              "online": self.online("jump", j["name"]), "last_seen_at": j["last_seen_at"]}
                             for j in jcs],
            "jumpoints": [{"name": j["name"], "hostname": j["hostname"], "online": self.online("jumpoint", j["name"]),
                           "protocols": j["protocols"], "enabled": j["enabled"]} for j in jps]})

    async def _agent(self, kind: str, name: str) -> Peer:
        agent = self.agents.get((kind, name))
        if agent is None:
            directory = Directory(self._site().engine)
            names = {j["name"] for j in await asyncio.to_thread(
                directory.jump_clients if kind == "jump" else directory.jumpoints)}
            what = "jump client" if kind == "jump" else "jumpoint"
            if name not in names:
                raise P.ProtocolError("not_found", f"no {what} {name!r} on this site")
            raise P.ProtocolError("offline", f"{what} {name!r} is not connected")
        return agent

    async def _rep_shell_open(self, rep: Peer, f: dict) -> None:
        req = P.int_field(f, "id", 0, 2**31)
        self._require(rep, "jump.use", "command.shell")
        target = P.field(f, "target", str, max_len=64)
        cols, rows = P.int_field(f, "cols", 10, 1000, default=80), P.int_field(f, "rows", 5, 500, default=24)
        agent = await self._agent("jump", target)
        ch = self._channel("shell", rep, agent, req, target)
        site = self._site()
        ch.lsid = await asyncio.to_thread(self._start_session, site, ch, agent.hostname or target)
        ch.recorder = AsciicastRecorder(site.recordings, cols, rows, f"{rep.name} on {target}")
        await agent.send({"type": "shell.open", "channel": ch.id, "cols": cols, "rows": rows, "session": ch.lsid})

    async def _rep_tunnel_open(self, rep: Peer, f: dict) -> None:
        req = P.int_field(f, "id", 0, 2**31)
        self._require(rep, "jump.use")
        name = P.field(f, "jumpoint", str, max_len=64)
        host = P.field(f, "host", str, max_len=253)
        port = P.int_field(f, "port", 1, 65535)
        site = self._site()
        try:
            jp = await asyncio.to_thread(Directory(site.engine).jumpoint, name)
        except NotFound as e:
            raise P.ProtocolError("not_found", str(e)) from None
        if not jp["enabled"]:
            raise P.ProtocolError("forbidden", f"jumpoint {name!r} is disabled")
        _check_allowed(host, jp["allowed_networks"])
        agent = await self._agent("jumpoint", name)
        if len(agent.channels or ()) >= jp["max_sessions"]:
            raise P.ProtocolError("busy", f"jumpoint {name!r} already carries its maximum of {jp['max_sessions']} sessions")
        ch = self._channel("tunnel", rep, agent, req, f"{host}:{port}")
        ch.lsid = await asyncio.to_thread(self._start_session, site, ch, host)
        await agent.send({"type": "tunnel.open", "channel": ch.id, "host": host, "port": port, "session": ch.lsid})

    async def _rep_resize(self, rep: Peer, f: dict) -> None:
        ch = self._channel_of(rep, P.int_field(f, "channel", 0, 2**32 - 1))
        cols, rows = P.int_field(f, "cols", 10, 1000), P.int_field(f, "rows", 5, 500)
        if ch is not None and ch.kind == "shell":
            if ch.recorder is not None:
                ch.recorder.resize(cols, rows)
            await ch.agent.send({"type": "resize", "channel": ch.id, "cols": cols, "rows": rows})

    # --- channels and their session records ---------------------------------------------------------
    def _channel(self, kind: str, rep: Peer, agent: Peer, req: int, target: str) -> Channel:
        ch = Channel(self._next_channel, kind, rep, agent, req, target)
        self._next_channel += 1
        self.channels[ch.id] = ch
        for p in (rep, agent):
            if p.channels is None:
                p.channels = set()
            p.channels.add(ch.id)
        ch.timer = asyncio.get_running_loop().call_later(ACK_TIMEOUT, self._ack_timeout, ch)
        return ch

    def _ack_timeout(self, ch: Channel) -> None:
        if not ch.open and ch.id in self.channels:
            async def fail():
                await ch.rep.send({"type": "error", "id": ch.req_id, "code": "timeout",
                                   "message": f"{ch.agent.name} did not answer within {ACK_TIMEOUT:.0f} seconds"})
                await self._end(ch, "timeout", by=None)
            asyncio.ensure_future(fail())

    @staticmethod
    def _start_session(site, ch: Channel, customer_host: str) -> str:
        """The channel's session (record, participants, audit) by the site's one session start; its lsid."""
        from tether.site.actions.history import begin_session

        rep, agent = ch.rep, ch.agent
        return begin_session(site, rep.name, rep.ip, {
            "rep": rep.name, "kind": ch.kind, "customer_name": ch.target if ch.kind == "shell" else agent.name,
            "customer_host": customer_host[:253], "jump_client": agent.name if agent.role == "jump" else None},
            events=[{"type": "participant.join", "actor": rep.name, "data": {"role": "representative", "ip": rep.ip}},
                    {"type": "participant.join", "actor": agent.name,
                     "data": {"role": agent.role, "ip": agent.ip, "target": ch.target}}])["lsid"]

    async def _opened(self, ch: Channel) -> None:
        ch.open = True
        if ch.timer:
            ch.timer.cancel()
        await ch.rep.send({"type": "opened", "id": ch.req_id, "channel": ch.id, "session": ch.lsid})

    async def _end(self, ch: Channel, reason: str, by: Peer | None, notify: bool = True) -> None:
        if self.channels.pop(ch.id, None) is None:
            return
        if ch.timer:
            ch.timer.cancel()
        for p in (ch.rep, ch.agent):
            if p.channels:
                p.channels.discard(ch.id)
            p.ended[ch.id] = None
            if len(p.ended) > ENDED_KEPT:
                del p.ended[next(iter(p.ended))]
            if notify and p is not by and not p.closed:
                await p.send({"type": "close", "channel": ch.id, "reason": reason})
        site = self._site()
        if site is None or ch.lsid is None:
            if ch.recorder:
                ch.recorder.abort()
            return
        actor = by.name if by is not None else "system"
        try:
            await asyncio.to_thread(self._finish_session, site, ch, reason, actor)
        except Exception:
            log.exception("recording the end of session %s", ch.lsid)

    @staticmethod
    def _finish_session(site, ch: Channel, reason: str, actor: str) -> None:
        if ch.recorder is not None:
            rec, ch.recorder = ch.recorder, None
            try:
                sha, size, duration = rec.finish()
            except TetherError as exc:  # the object store is down: the session still ends, its record says why
                log.error("the recording of session %s could not be stored: %s", ch.lsid, exc.message)
            else:
                site.history.add_recording(ch.lsid, "command_shell", sha, size, rec.started, duration)
        site.history.end_session(ch.lsid, reason, actor, {"bytes_to_client": ch.to_agent, "bytes_to_rep": ch.to_rep})
        site.audit.record(actor, "history.session.end", ch.lsid, None, {"reason": reason})  # as the API's end does

    async def _end_channels(self, peer: Peer, reason: str) -> None:
        for cid in list(peer.channels or ()):
            ch = self.channels.get(cid)
            if ch is not None:
                await self._end(ch, reason, by=peer)

    # --- housekeeping ---------------------------------------------------------------------------
    def _start(self) -> None:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_running_loop()
            self._lookups = asyncio.Semaphore(HELLO_LOOKUPS)  # bound to the loop the hub serves on

    async def sweep(self) -> None:
        """One housekeeping pass, run every SWEEP_SECONDS by the appliance's job runner: kick the
        clients that went silent for three heartbeats and write the last-seen times gathered."""
        self._start()
        _rate, hb = self.settings()
        now = time.monotonic()
        silent = [p for p in (*self.agents.values(), *self.reps) if now - p.heard > 3 * hb]
        for p in silent:
            await self._kick(p, P.ProtocolError("timeout", f"no frame for {3 * hb} seconds", P.BAD_FRAME))
        await self._flush_seen()

    def role_changed(self, serving: bool) -> None:
        """This appliance stopped serving clients (e.g. became a backup): every client is told to go."""
        if serving:
            return

        async def drop():
            reason = self._refusal() or "this appliance no longer serves clients"
            for peer in [*self.agents.values(), *self.reps]:
                await self._kick(peer, P.ProtocolError("not_primary", reason, P.UNAVAILABLE,
                                                       retry_after=NOT_PRIMARY_RETRY))
        self._soon(drop)

    async def _flush_seen(self) -> None:
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        site = self._site()
        if site is None:
            return
        # connects and disconnects only (an online client's last-seen is "now"), in one transaction
        await asyncio.to_thread(Directory(site.engine).seen_many, seen)

    # --- called by the web layer, from any thread ----------------------------------------------------
    def _soon(self, make) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(make())
        else:
            asyncio.run_coroutine_threadsafe(make(), loop)

    def revoked(self, kind: str, name: str) -> None:
        """Disconnect a jump client or jumpoint whose identity was just revoked."""
        def make():
            peer = self.agents.get((kind, name))
            if peer is None:
                return asyncio.sleep(0)
            return self._kick(peer, P.ProtocolError("revoked", "this client's identity was revoked", P.REVOKED))
        self._soon(make)

    def site_replaced(self) -> None:
        """A restore swapped the site in: every client reconnects and is checked against the new one."""
        async def drop():
            for peer in [*self.agents.values(), *self.reps]:
                await self._kick(peer, P.ProtocolError("site_replaced", "the site was restored; reconnect",
                                                       P.UNAVAILABLE))
        self._soon(drop)

    async def close(self) -> None:
        # all at once, each told to come back soon (a restart takes seconds), not after a long backoff
        await asyncio.gather(*(self._kick(peer, P.ProtocolError(
            "shutdown", "the appliance is shutting down", 1001, retry_after=SHUTDOWN_RETRY))
            for peer in [*self.agents.values(), *self.reps]))
        await self._flush_seen()


def _check_allowed(host: str, networks: list[str]) -> None:
    if not networks:
        return
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise P.ProtocolError("forbidden", "this jumpoint only reaches its allowed networks: give an IP address") from None
    if not any(addr in ipaddress.ip_network(n, strict=False) for n in networks):
        raise P.ProtocolError("forbidden", f"{host} is outside the jumpoint's allowed networks ({', '.join(networks)})")
