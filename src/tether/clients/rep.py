"""The representative console (CL-01): logs in with a site user's
credentials over the client channel, lists the jump clients and jumpoints
the user may reach, relays a command shell on a jump client to this
terminal, and forwards local TCP connections through a jumpoint."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import sys
import termios
import tty

from websockets.exceptions import ConnectionClosed

from . import protocol as P
from .transport import Refused, Site


class RequestFailed(Exception):
    def __init__(self, frame: dict):
        super().__init__(frame.get("message") or frame.get("code"))
        self.code = frame.get("code")


class Console:
    def __init__(self, site: Site, username: str, password: str, on_challenge=None):
        self.site, self.username, self.password = site, username, password
        self.on_challenge = on_challenge  # async (message) -> one-time code
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.channels: dict[int, asyncio.Queue] = {}
        self.ws = None

    async def __aenter__(self) -> "Console":
        self.ws, self.welcome, _ = await self.site.open({"role": "rep", "username": self.username,
                                                         "password": self.password},
                                                        on_challenge=self.on_challenge)
        self.reader = asyncio.ensure_future(self._read())
        self.beat = asyncio.ensure_future(self._heartbeat(float(self.welcome.get("heartbeat") or 30)))
        return self

    async def __aexit__(self, *exc) -> None:
        self.beat.cancel()
        self.reader.cancel()
        await self.ws.close()

    async def _heartbeat(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.ws.send(P.encode({"type": "ping"}))

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if isinstance(msg, bytes):
                    cid, payload = P.unpack(msg)
                    # data may overtake the "opened" answer: keep it for the channel about to open
                    self.channels.setdefault(cid, asyncio.Queue()).put_nowait(payload)
                    continue
                f = P.decode(msg)
                if f["type"] == "close":
                    q = self.channels.get(f.get("channel"))
                    if q is not None:
                        q.put_nowait(None)
                        q.reason = f.get("reason")
                elif "id" in f and f["id"] in self.pending:
                    self.pending.pop(f["id"]).set_result(f)
                elif f["type"] == "error":
                    print(f"tether-rep: site says {f.get('code')}: {f.get('message')}", file=sys.stderr)
        except ConnectionClosed:
            pass
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_result({"type": "error", "code": "disconnected", "message": "the site closed the connection"})
            for q in self.channels.values():
                q.put_nowait(None)

    async def request(self, frame: dict, timeout: float = 30.0) -> dict:
        rid = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        await self.ws.send(P.encode({**frame, "id": rid}))
        answer = await asyncio.wait_for(fut, timeout)
        if answer.get("type") == "error":
            raise RequestFailed(answer)
        return answer

    async def list(self) -> dict:
        return await self.request({"type": "list"})

    async def send(self, cid: int, data: bytes) -> None:
        for i in range(0, len(data), P.MAX_DATA):
            await self.ws.send(P.pack(cid, data[i:i + P.MAX_DATA]))

    async def close_channel(self, cid: int, reason: str = "closed by representative") -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(P.encode({"type": "close", "channel": cid, "reason": reason}))

    # --- a command shell in this terminal ---------------------------------------------------------
    async def shell(self, target: str, stdin=None, stdout=None) -> str:
        stdin = stdin or sys.stdin
        stdout = stdout or sys.stdout.buffer
        cols, rows = shutil.get_terminal_size((80, 24))
        cid, q, lsid = await self.open({"type": "shell.open", "target": target, "cols": cols, "rows": rows})
        print(f"tether-rep: session {lsid} on {target}", file=sys.stderr, flush=True)
        loop = asyncio.get_running_loop()
        fd = stdin.fileno()
        interactive = os.isatty(fd)
        saved = termios.tcgetattr(fd) if interactive else None
        def readable():
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
                if not interactive:  # end of piped input: end of input for the shell too (^D)
                    asyncio.ensure_future(self.send(cid, b"\x04"))
                return
            asyncio.ensure_future(self.send(cid, data))

        if interactive:
            tty.setraw(fd)
            loop.add_signal_handler(signal.SIGWINCH, lambda: asyncio.ensure_future(self._resize(cid)))
        loop.add_reader(fd, readable)
        try:
            while True:
                data = await q.get()
                if data is None:
                    break
                stdout.write(data)
                stdout.flush()
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
            if interactive:
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
                loop.remove_signal_handler(signal.SIGWINCH)
        return getattr(q, "reason", None) or "closed"

    async def open(self, frame: dict) -> tuple[int, asyncio.Queue, str]:
        """Open a shell or tunnel channel: (channel, queue of its incoming data, session id)."""
        answer = await self.request(frame)
        q = self.channels.setdefault(answer["channel"], asyncio.Queue())
        return answer["channel"], q, answer["session"]

    async def _resize(self, cid: int) -> None:
        cols, rows = shutil.get_terminal_size((80, 24))
        await self.ws.send(P.encode({"type": "resize", "channel": cid, "cols": cols, "rows": rows}))

    # --- TCP forwarding through a jumpoint ----------------------------------------------------------
    async def forward(self, jumpoint: str, host: str, port: int, listen_host: str, listen_port: int,
                      on_listening=None) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            try:
                cid, q, lsid = await self.open({"type": "tunnel.open", "jumpoint": jumpoint, "host": host,
                                                "port": port})
            except (RequestFailed, asyncio.TimeoutError) as e:
                print(f"tether-rep: tunnel refused: {e}", file=sys.stderr, flush=True)
                writer.close()
                return

            async def down():
                while (data := await q.get()) is not None:
                    writer.write(data)
                    await writer.drain()
                writer.close()

            d = asyncio.ensure_future(down())
            try:
                while data := await reader.read(P.MAX_DATA):
                    await self.send(cid, data)
            except OSError:
                pass
            await self.close_channel(cid, "client closed")
            self.channels.get(cid, asyncio.Queue()).put_nowait(None)
            await d

        server = await asyncio.start_server(handle, listen_host, listen_port)
        addr = server.sockets[0].getsockname()
        if on_listening:
            on_listening(addr)
        async with server:
            await self.reader  # until the site closes the connection


__all__ = ["Console", "RequestFailed", "Refused"]
