"""A blocking WebSocket client for tests that speak the client protocol frame by frame: websockets'
asyncio client run on an event loop thread of its own, behind ``open()``, ``send``, ``recv(timeout)``,
``send_raw`` and a context manager.

Why not websockets' own sync client: it reads the socket in a background thread while the caller
writes from its own, so two threads drive one OpenSSL connection at once, which OpenSSL does not
support. Under TLS 1.3 the appliance's session tickets arrive just as the client writes its upgrade
request, and about one opening handshake in 2,000 then stalls until its timeout (measured: 1-2 of
2,000-4,000 bursts of 50 with the sync client; 0 of 3,000 with it limited to TLS 1.2; 0 of 4,000 with
the asyncio client, which is what tether-jump and tether-rep use). Here one thread does every read and
write, as in the real clients."""

from __future__ import annotations

import asyncio
import ssl
import threading

from websockets.asyncio.client import ClientConnection, connect


class Loop:
    """One event loop on a daemon thread, shared by the connections a test opens."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ws-loop")
        self.thread.start()

    def run(self, coro, timeout: float | None = None):
        """Run ``coro`` on the loop and wait for it; ``TimeoutError`` after ``timeout`` seconds."""
        if timeout is not None:
            coro = asyncio.wait_for(coro, timeout)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def open(self, url: str, context: ssl.SSLContext, open_timeout: float = 8, **kw) -> "SyncWebSocket":
        async def opening() -> ClientConnection:
            return await connect(url, ssl=context, open_timeout=open_timeout, **kw)

        conn = self.run(opening())
        return SyncWebSocket(self, conn)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class SyncWebSocket:
    def __init__(self, loop: Loop, conn: ClientConnection):
        self._loop, self.conn = loop, conn

    def send(self, message: str | bytes) -> None:
        self._loop.run(self.conn.send(message))

    def recv(self, timeout: float | None = None) -> str | bytes:
        return self._loop.run(self.conn.recv(), timeout)

    def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the TLS stream, below the WebSocket framing (crafted frames)."""
        self._loop.loop.call_soon_threadsafe(self.conn.transport.write, data)

    def close(self) -> None:
        self._loop.run(self.conn.close(), timeout=10)

    def __enter__(self) -> "SyncWebSocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
