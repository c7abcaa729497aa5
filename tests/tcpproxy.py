"""A TCP proxy on loopback that a test can cut: it forwards connections from ``host:port`` (port chosen)
to ``upstream``, on an event loop thread of its own, and can reset them (a network cut), stall them (a
network that drops packets), slow them (``rate``) or cut them by itself once a number of bytes has passed
one way (``cut_after``: in the middle of a download or an upload). TLS passes through untouched.
Used by the failover tests (a link between two appliances), the object-storage tests (the appliance and
its S3 server) and the integration client's tests (the client and the appliance)."""

from __future__ import annotations

import asyncio
import threading

class _Conn:
    def __init__(self, down: asyncio.StreamWriter, up: asyncio.StreamWriter):
        self.writers = (down, up)
        self.received = 0  # bytes from the upstream to the client
        self.closed = False

    def abort(self) -> None:
        self.closed = True
        for w in self.writers:
            w.transport.abort()


class Proxy:
    """Forwards TCP connections from ``host:port`` (port chosen) to ``upstream`` (host, port).

    ``cut()`` resets every open connection and every new one until ``heal()``; ``stall()`` stops
    forwarding (connections stay open, bytes wait, as on a network that drops packets) until ``heal()``;
    ``rate`` (bytes/s from the upstream) slows each connection; ``upstream`` may be changed at any time
    (new connections go there). ``connections`` lists every connection, with the bytes it carried."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1"):
        self.upstream = upstream
        self.host = host
        self.mode = "up"
        self.rate: float | None = None
        self.passed = {"up": 0, "down": 0}  # bytes towards the upstream / towards the client, since cut_after
        self._trip: tuple[str, int] | None = None
        self.connections: list[_Conn] = []
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-proxy", daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, host, 0))
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, scheme: str = "https") -> str:
        return f"{scheme}://{self.address}"

    def cut_after(self, n: int, direction: str = "down") -> None:
        """Cut (as ``cut``) once ``n`` more bytes have passed ``direction``: "down" (from the upstream to the
        clients, all connections together) or "up" (from the clients to the upstream); the bytes up to
        ``n`` are forwarded, the rest is not."""
        self.passed = {"up": 0, "down": 0}
        self._trip = (direction, n)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        try:
            if self.mode == "down":
                writer.transport.abort()
                return
            try:
                ur, uw = await asyncio.open_connection(*self.upstream)
            except OSError:
                writer.transport.abort()
                return
            conn = _Conn(writer, uw)
            self.connections.append(conn)
            await asyncio.gather(self._pump(reader, uw, conn, False), self._pump(ur, writer, conn, True))
            conn.abort()
        finally:
            self._tasks.discard(asyncio.current_task())

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn,
                    from_upstream: bool) -> None:
        try:
            while not conn.closed:
                data = await reader.read(1 << 16)
                while self.mode == "stall" and not conn.closed:
                    await asyncio.sleep(0.02)
                if not data or conn.closed:
                    break
                if from_upstream:
                    conn.received += len(data)
                    if self.rate:
                        await asyncio.sleep(len(data) / self.rate)
                direction = "down" if from_upstream else "up"
                trip = self._trip
                if trip is not None and trip[0] == direction and self.passed[direction] + len(data) >= trip[1]:
                    writer.write(data[:max(0, trip[1] - self.passed[direction])])
                    self._trip = None
                    self.mode = "down"
                    await writer.drain()
                    self._abort_all()
                    break
                self.passed[direction] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            conn.abort()

    def _abort_all(self) -> None:
        for c in self.connections:
            c.abort()

    def cut(self) -> None:
        """Reset every connection now and refuse new ones (until ``heal``)."""
        self.mode = "down"
        self._loop.call_soon_threadsafe(self._abort_all)

    def stall(self) -> None:
        self.mode = "stall"

    def heal(self) -> None:
        self.mode = "up"
        self._trip = None

    def close(self) -> None:
        async def shutdown():
            self._server.close()
            self._abort_all()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

        try:
            self._call(shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
