"""How a listener accepts a connection, under the connection guard
(``tether.runtime.connguard``): the TCP connection takes a slot first (or is
closed at once, its source being at its limit), then has
``handshake_timeout`` seconds for its TLS handshake, then
``header_timeout`` seconds for each complete request head (the first one,
and each next one on a kept-alive connection); a connection that sends its
headers a line at a time, or nothing, is closed when that time is up. A
complete request head proves the connection (it is no longer among the
first closed when descriptors run short); a WebSocket upgrade ends the
header timer (the client hub has its own hello timeout), and a WebSocket
the appliance closes (e.g. no hello in time) waits ``WS_CLOSE_TIMEOUT``
seconds for the peer's close frame before its transport is closed, not
uvicorn's 10: thousands of silent peers are let go sooner.

Handshakes are the expensive part of a connection (a TLS handshake, then
for most an HTTP request or a WebSocket upgrade right behind it), so at most
``MAX_HANDSHAKES`` run at once: an accepted connection waits in a queue of
its source, and a free place goes to the sources in turn (round robin), so
a probe or an administrator from another address starts its handshake
after one connection of each flooding source, not after the whole flood
(bench/flood.py, 5,000 idle WebSockets: with every handshake started at
once, /health went unanswered for 10 s during the connections; with the
queue, every probe answered). A handshake holds its place for at most
``HANDSHAKE_PLACE`` seconds: a peer that sends nothing (an idle TCP
connection, a stuck ClientHello) costs no CPU, and goes on waiting for its
``handshake_timeout`` outside the count. A connection that waited
``handshake_timeout`` in the queue is closed without a handshake; a queued
connection counts as unproven (the first evicted near the descriptor
limit).

``GuardedServer`` is uvicorn's server with its startup's ``create_server``
replaced by this accept path: it accepts on the listening socket itself, so
the slot exists before the handshake (which ``create_server(ssl=...)``
hides), and hands each admitted socket to ``loop.connect_accepted_socket``
with the TLS context and the handshake timeout."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import time

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from tether.runtime.connguard import ConnectionGuard, Slot

log = logging.getLogger("tether.server")
ACCEPT_BATCH = 64  # connections accepted per wake-up of the listening socket
ACCEPT_PAUSE = 0.1  # seconds without accepting after the process ran out of descriptors
MAX_HANDSHAKES = 32  # TLS handshakes under way at once (the rest wait, per source, in turn)
WS_CLOSE_TIMEOUT = 2.0  # seconds the appliance's WebSocket close waits for the peer's (uvicorn: 10)
HANDSHAKE_PLACE = 0.25  # seconds a handshake holds its place; one still under way goes on outside the count


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with the header timeout, marking its slot proven at the first request head."""

    def __init__(self, *args, guard: ConnectionGuard, slot: Slot, **kw):
        super().__init__(*args, **kw)
        self.guard, self.slot = guard, slot
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.slot.attach(transport)
        self._arm()
        self.slot.handshaken()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.guard.header_timeout, self._head_deadline)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:  # no complete request head in time
            self.transport.abort()  # not close(): a TLS close waits for the peer's close_notify

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.slot.proven:
            self.slot.proven = True

    def handle_websocket_upgrade(self, event) -> None:
        self._disarm()
        self.slot.proven = True
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request head has the same time

    def shutdown(self) -> None:
        """The server is stopping: an idle keep-alive connection is aborted, not closed, because a TLS close
        waits for the peer's close_notify, which an idle client pool never sends (uvicorn then waits its
        whole graceful-shutdown time, 5 s, for nothing); a request under way still finishes."""
        if self.cycle is None or self.cycle.response_complete:
            self._disarm()
            self.transport.abort()
        else:
            super().shutdown()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)
        self.guard.release(self.slot)


class GuardedWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with a shorter close (``WS_CLOSE_TIMEOUT``) and its parser
    finished when the connection is lost. The parser of ``websockets`` is a suspended generator that
    refers to its protocol object; a connection lost before its closing handshake (a peer that vanished,
    a hello timeout) left that cycle, with its buffers and the TLS objects behind it, to the cyclic
    garbage collector, whose full collections are rare: after 3,000 idle WebSockets, all 3,000 protocol
    objects were still alive, ~18 KB each, and freed only by a full ``gc.collect()`` (bench/flood.py).
    Closing the generator breaks the cycle, so the memory goes back when the connection ends."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.close_timeout = WS_CLOSE_TIMEOUT

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        parser, self.conn.parser = self.conn.parser, None  # nothing parses after the connection is lost
        if parser is not None:
            parser.close()


class GuardedServer(uvicorn.Server):
    """One listener: uvicorn's server over the guarded accept path. Signals are handled by the caller."""

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard):
        super().__init__(config)
        self.guard = guard
        self.handshakes: set[asyncio.Task] = set()
        self.waiting: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()  # source -> queue
        self.running = 0  # handshakes under way (at most MAX_HANDSHAKES)

    def make_http(self, slot: Slot) -> GuardedH11:
        return GuardedH11(config=self.config, server_state=self.server_state, app_state=self.lifespan.state,
                          guard=self.guard, slot=slot)

    async def startup(self, sockets: list | None = None) -> None:
        await self.lifespan.startup()
        loop = asyncio.get_running_loop()
        self.listening = list(sockets or [])
        for sock in self.listening:
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._accept, sock)
        self.servers = []  # no asyncio server: this class accepts (uvicorn's shutdown closes none)
        self.started = True

    def _accept(self, sock) -> None:
        try:
            self._accept_batch(sock)
        finally:
            self._start_handshakes()

    def _accept_batch(self, sock) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors or buffers: stop accepting for a moment
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                log.warning("accept paused for %.1f s: %s", ACCEPT_PAUSE, exc)
                loop.remove_reader(sock.fileno())
                loop.call_later(ACCEPT_PAUSE, self._resume_accepting, sock)
                return
            slot = self.guard.admit(addr[0] if isinstance(addr, tuple) else "?")
            if slot is None:
                conn.close()
                continue
            conn.setblocking(False)
            self.waiting.setdefault(slot.source, collections.deque()).append((conn, slot))
            slot.abort = lambda c=conn, sl=slot: self._drop_waiting(c, sl)

    def _drop_waiting(self, conn, slot: Slot) -> None:
        """Close a connection still in its source's queue (evicted by the guard, or waited too long)."""
        q = self.waiting.get(slot.source)
        if q is not None:
            with contextlib.suppress(ValueError):
                q.remove((conn, slot))
            if not q:
                del self.waiting[slot.source]
        conn.close()
        self.guard.release(slot)

    def _start_handshakes(self) -> None:
        """Fill the free handshake places from the sources' queues in turn (oldest connection of each)."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        while self.running < MAX_HANDSHAKES and self.waiting:
            source, q = next(iter(self.waiting.items()))
            conn, slot = q.popleft()
            if q:
                self.waiting.move_to_end(source)  # its next connection after every other source's
            else:
                del self.waiting[source]
            if now - slot.since > self.guard.handshake_timeout:  # its handshake time went by in the queue
                conn.close()
                self.guard.release(slot)
                continue
            self.running += 1
            timer = loop.call_later(HANDSHAKE_PLACE, slot.handshaken)  # an idle peer frees its place soon
            slot.on_handshaken = lambda t=timer: (t.cancel(), self._handshake_ended())
            started: list[bool] = []
            task = loop.create_task(self._handshake(conn, slot, started))
            slot.abort = task.cancel
            self.handshakes.add(task)
            task.add_done_callback(lambda t, c=conn, sl=slot, st=started: self._handshake_done(t, c, sl, st))

    def _handshake_ended(self) -> None:
        self.running -= 1
        if self.waiting and not self.should_exit:
            self._start_handshakes()

    def _resume_accepting(self, sock) -> None:
        if not self.should_exit and sock.fileno() != -1:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, sock)

    async def _handshake(self, conn, slot: Slot, started: list) -> None:
        started.append(True)
        await asyncio.get_running_loop().connect_accepted_socket(
            lambda: self.make_http(slot), conn, ssl=self.config.ssl, ssl_handshake_timeout=self.guard.handshake_timeout)
        # from here the HTTP protocol holds the slot (GuardedH11.connection_made attached its transport)

    def _handshake_done(self, task: asyncio.Task, conn, slot: Slot, started: list) -> None:
        self.handshakes.discard(task)
        slot.handshaken()  # if it failed (when it succeeded, the protocol's connection_made said so first)
        if not started:  # cancelled before it began: the socket was never handed to a transport
            conn.close()
        if task.cancelled() or task.exception() is not None:  # timed out, failed, evicted: the transport closed it
            self.guard.release(slot)
        elif slot.transport is None:  # the peer left during the handshake: uvloop returns without connection_made
            self.guard.release(slot)

    async def shutdown(self, sockets=None) -> None:
        loop = asyncio.get_running_loop()
        for sock in self.listening:
            if sock.fileno() != -1:
                loop.remove_reader(sock.fileno())
                sock.close()
        for task in list(self.handshakes):
            task.cancel()
        for q in list(self.waiting.values()):
            for conn, slot in list(q):
                self._drop_waiting(conn, slot)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self):  # signals are handled once, by serve_forever
        yield
