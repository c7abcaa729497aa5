"""Jump clients and jumpoints (CL-01, CL-03): the identity kept in the
client's state directory, the connection kept open for good (heartbeats,
reconnection with backoff and jitter, pacing by the site's ``retry_after``),
and the work the site asks of them: a command shell on a pty (jump client)
or a TCP tunnel to a host on the jumpoint's network."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import platform
import random
import signal
import socket
import struct
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from websockets.exceptions import ConnectionClosed, WebSocketException

from . import protocol as P
from .transport import BACKOFF_CAP, STABLE_AFTER, Backoff, Refused, Site, describe
from .trust import UntrustedCertificate

log = logging.getLogger("tether.client")

STATE_FORMAT = 1
FATAL = ("revoked",)  # refusals after which retrying cannot help


@dataclass
class Identity:
    """``<state>/identity.json`` (docs/formats/client-protocol.md)."""

    site: str
    port: int
    kind: str
    client_id: str
    secret: str
    name: str
    trust: dict
    hosts_file: str | None = None  # the --hosts-file given at install, used again by run (unless run names one)

    @classmethod
    def load(cls, state: Path) -> "Identity":
        path = state / "identity.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise SystemExit(f"Error: {path} does not exist\nTry: install first (tether-jump install --site HOST "
                             "--token TOKEN)") from None
        if data.get("format") != STATE_FORMAT:
            raise SystemExit(f"Error: {path}: unknown format {data.get('format')!r}")
        data.pop("format")
        return cls(**data)

    def save(self, state: Path) -> Path:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = state / "identity.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"format": STATE_FORMAT, **self.__dict__}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def site_for(self, hosts_file: Path | None) -> Site:
        kept = Path(self.hosts_file) if self.hosts_file else None
        return Site(self.site, self.port, self.trust, hosts_file or kept)


def parse_token(token: str) -> dict:
    """The trust a token carries: its third part is the site key's pin (absent for root trust)."""
    parts = token.strip().split(".")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError("an installer token has the form ID.SECRET[.PIN], as shown in /login")
    return {"pin": "sha256/" + parts[2]} if len(parts) == 3 else {}


def install(kind: str, site_arg: str, token: str, state: Path, cacert: str | None, hosts_file: Path | None,
            hostname: str | None = None) -> Identity:
    from .transport import split_site

    host, port = split_site(site_arg)
    trust = parse_token(token)
    if cacert:
        trust = {"cacert": cacert, **({"pin": trust["pin"]} if trust.get("pin") else {})}
    if not trust:
        raise ValueError("this token carries no pinned key: give the site's CA certificate with --cacert")
    site = Site(host, port, trust, hosts_file)
    answer = site.register(token, kind, hostname or socket.gethostname(), platform.system().lower())
    ident = Identity(host, port, kind, answer["client_id"], answer["secret"], answer["name"], trust,
                     str(Path(hosts_file).resolve()) if hosts_file else None)
    ident.save(state)
    return ident


# --- the work --------------------------------------------------------------------------------------
class _Work:
    """One channel on this client: a shell or a tunnel."""

    def __init__(self, client: "AgentClient", channel: int):
        self.client, self.channel = client, channel
        self.closed = False

    async def send_data(self, data: bytes) -> None:
        await self.client.send_bytes(P.pack(self.channel, data))

    async def finish(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.client.work.pop(self.channel, None)
            await self.client.send({"type": "close", "channel": self.channel, "reason": reason})

    def run(self) -> None: ...
    def input(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def stop(self) -> None: ...


class Shell(_Work):
    """A command shell on a pty of this machine."""

    async def start(self, cols: int, rows: int) -> None:
        master, slave = os.openpty()
        _set_size(slave, cols, rows)
        shell = os.environ.get("TETHER_SHELL") or ("/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh")
        env = {**os.environ, "TERM": "xterm-256color", "PS1": r"\u@\h:\w\$ "}
        try:
            self.proc = await asyncio.create_subprocess_exec(
                shell, "-i", stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                preexec_fn=_controlling_tty, cwd=os.path.expanduser("~"))
        finally:
            os.close(slave)
        self.master = master
        os.set_blocking(master, False)
        self.queue: asyncio.Queue = asyncio.Queue()

    def run(self) -> None:
        asyncio.get_running_loop().add_reader(self.master, self._readable)
        self.pump = asyncio.ensure_future(self._pump())

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the shell and everything on its pty have exited
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.queue.put_nowait(data)

    async def _pump(self) -> None:
        while True:
            data = await self.queue.get()
            if not data:
                break
            await self.send_data(data)
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except asyncio.TimeoutError:
            pass
        self._close_fd()
        await self.finish(f"exited {self.proc.returncode}")

    def input(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def resize(self, cols: int, rows: int) -> None:
        _set_size(self.master, cols, rows)

    def stop(self) -> None:
        self.closed = True
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass

    def _close_fd(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
        except OSError:
            pass


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _controlling_tty() -> None:  # in the child, after setsid(): make the pty its terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Tunnel(_Work):
    """A TCP connection from the jumpoint to a host on its network."""

    async def start(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)

    def run(self) -> None:
        self.pump = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            while data := await self.reader.read(P.MAX_DATA):
                await self.send_data(data)
        except OSError:
            pass
        await self.finish("target closed")

    def input(self, data: bytes) -> None:
        self.writer.write(data)

    def stop(self) -> None:
        self.closed = True
        self.writer.close()


# --- the connection ----------------------------------------------------------------------------------
class AgentClient:
    """Keeps one jump client's or jumpoint's connection to its site, for good."""

    def __init__(self, ident: Identity, hosts_file: Path | None = None, rng: random.Random | None = None,
                 hostname: str | None = None, max_backoff: float = BACKOFF_CAP):
        self.ident = ident
        self.site = ident.site_for(hosts_file)
        self.hostname = hostname or socket.gethostname()
        self.rng = rng or random.Random()
        self.backoff = Backoff(cap=max_backoff, rng=self.rng)
        self.ws = None
        self.work: dict[int, _Work] = {}
        self.connected = asyncio.Event()
        self.connects = 0
        self.last_error: str | None = None
        self._retry_hint: float | None = None  # retry_after of the site's last error frame
        self._stop = False

    def stop(self) -> None:
        self._stop = True
        if self.ws is not None:
            asyncio.ensure_future(self.ws.close())

    async def send(self, frame: dict) -> None:
        if self.ws is not None:
            try:
                await self.ws.send(P.encode(frame))
            except ConnectionClosed:
                pass

    async def send_bytes(self, data: bytes) -> None:
        if self.ws is not None:
            try:
                await self.ws.send(data)
            except ConnectionClosed:
                pass

    async def run(self) -> str:
        """Connect and reconnect until stopped or revoked; the reason it ended."""
        while not self._stop:
            began = time.monotonic()
            delay = None
            try:
                await self._connection()
            except Refused as e:
                self.last_error = describe(e)
                if e.code in FATAL:
                    log.error("%s; not reconnecting", self.last_error)
                    return e.code
                if e.retry_after is not None:  # busy (CL-04), or a planned stop: the site says when
                    delay = float(e.retry_after) * (1 + 0.5 * self.rng.random())
                    self.backoff.reset()  # and if it is not back by then, start again from short waits
                log.warning("%s", self.last_error)
            except (UntrustedCertificate, OSError, WebSocketException, asyncio.TimeoutError, P.ProtocolError) as e:
                self.last_error = describe(e)
                log.warning("%s", self.last_error)
            if self._stop:
                break
            if time.monotonic() - began >= STABLE_AFTER:
                self.backoff.reset()
            if delay is None:
                delay = self.backoff.next()
            log.info("reconnecting in %.2f s", delay)
            await asyncio.sleep(delay)
        return "stopped"

    async def _connection(self) -> None:
        hello = {"role": self.ident.kind, "client_id": self.ident.client_id, "secret": self.ident.secret,
                 "hostname": self.hostname, "os": platform.system().lower()}
        ws, welcome, address = await self.site.open(hello)
        self.ws = ws
        self._retry_hint = None
        self.connects += 1
        if self.connects == 1:
            self.backoff.reset()
        heartbeat = float(welcome.get("heartbeat") or 30)
        log.info("connected to %s (%s) as %s %s", self.site.hostname, address, self.ident.kind, welcome.get("name"))
        self.connected.set()
        beat = asyncio.ensure_future(self._heartbeat(heartbeat))
        try:
            while True:
                msg = await asyncio.wait_for(ws.recv(), 2 * heartbeat)
                if isinstance(msg, str):
                    await self._on_frame(P.decode(msg))
                else:
                    cid, payload = P.unpack(msg)
                    w = self.work.get(cid)
                    if w is not None:
                        w.input(payload)
        except ConnectionClosed as e:
            frame = {"code": "closed", "message": f"connection closed ({e.rcvd.code if e.rcvd else 'no close frame'})",
                     "retry_after": self._retry_hint}
            if e.rcvd and e.rcvd.code == P.REVOKED:
                frame = {"code": "revoked", "message": "this client's identity was revoked"}
            raise Refused(frame, e.rcvd.code if e.rcvd else None) from None
        finally:
            self.connected.clear()
            beat.cancel()
            self.ws = None
            for w in list(self.work.values()):
                w.stop()
            self.work.clear()
            await ws.close()

    async def _heartbeat(self, every: float) -> None:
        while True:
            await asyncio.sleep(every * (0.9 + 0.2 * self.rng.random()))
            await self.send({"type": "ping"})

    async def _on_frame(self, f: dict) -> None:
        t = f["type"]
        if t in ("pong", "welcome"):
            return
        if t == "error":
            log.warning("site says: %s: %s", f.get("code"), f.get("message"))
            self._retry_hint = f.get("retry_after") if isinstance(f.get("retry_after"), (int, float)) else None
            return
        cid = P.int_field(f, "channel", 0, 2**32 - 1)
        if t == "close":
            w = self.work.pop(cid, None)
            if w is not None:
                w.stop()
        elif t == "resize" and cid in self.work:
            self.work[cid].resize(P.int_field(f, "cols", 10, 1000), P.int_field(f, "rows", 5, 500))
        elif t == "shell.open" and self.ident.kind == "jump":
            await self._start(Shell(self, cid), f.get("cols", 80), f.get("rows", 24))
        elif t == "tunnel.open" and self.ident.kind == "jumpoint":
            await self._start(Tunnel(self, cid), P.field(f, "host", str), P.int_field(f, "port", 1, 65535))
        else:
            log.warning("ignoring a %r frame", t)

    async def _start(self, w: _Work, *args) -> None:
        try:
            await w.start(*args)
        except (OSError, asyncio.TimeoutError) as e:
            await self.send({"type": "channel.failed", "channel": w.channel, "message": str(e) or type(e).__name__})
            return
        self.work[w.channel] = w
        await self.send({"type": "channel.opened", "channel": w.channel})
        w.run()  # output only after the site knows the channel is open
        log.info("channel %s: %s started", w.channel, type(w).__name__.lower())
