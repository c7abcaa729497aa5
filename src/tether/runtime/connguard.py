"""The connection guard: how many connections the appliance holds, from whom,
and for how long before they prove themselves, so that one source cannot
exhaust it and ``/health``, ``/check_health`` and the admin faces still
answer under a flood (issue 19 item 2).

Every accepted TCP connection takes a ``Slot`` before its TLS handshake:

- a source (IP address) holds at most ``max_per_source`` connections
  (``security.connections`` in the /appliance settings; the default leaves
  room for a NAT in front of many jump clients); one more is closed at once;
- a slot is *unproven* until a complete request head arrived on it (the TLS
  handshake and the headers within their timeouts, which the server layer
  enforces); when the process nears its descriptor limit (all but
  ``RESERVE`` descriptors), each new connection first closes the
  longest-held unproven one, so descriptors are always left for a health
  probe or an administrator, and a flood only churns its own connections;
- a slot is released when its handshake fails or its HTTP connection ends,
  and otherwise by a sweep on the event loop (once a second) that finds its
  transport closed, whatever protocol ended up owning it (a WebSocket after
  the upgrade).

Memory after a flood (bench/flood.py measures RSS before, during and after):
not a leak, but memory kept alive longer than its connection, and then kept
by the allocators. Objects a connection leaves in a reference cycle are
freed only by a full garbage collection, which is rare: a WebSocket lost
before its closing handshake (``web/connections.GuardedWebSocket`` now breaks
that cycle at its root), or a body refused while FastAPI parsed it (its
parse error keeps the frame that holds it), each with its TLS objects and
buffers. The memory freed goes back to pymalloc's 1 MiB arenas and glibc's
heap, which return it only when whole arenas are empty or after
``malloc_trim(0)``. So once the number of open connections has dropped by
``TRIM_AFTER`` from its peak, or by ``TRIM_MIN`` when none is left, the
sweep runs a full collection, then the trim."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("tether.connections")

RESERVE = 512  # descriptors never used by unproven connections: files, databases, probes, admins
TRIM_AFTER = 500  # connections closed since the peak before the freed memory is handed back
TRIM_MIN = 1  # ... or any, once none is left (a quiet appliance after a burst: a trim costs under a millisecond)
SWEEP_SECONDS = 1.0


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


@dataclass(eq=False)
class Slot:
    source: str
    abort: Callable[[], object] = lambda: None  # closes the connection at once (its handshake, or its transport)
    transport: asyncio.BaseTransport | None = None  # once the handshake is done
    since: float = field(default_factory=time.monotonic)
    proven: bool = False  # a complete request head arrived
    released: bool = False
    on_handshaken: Callable[[], object] | None = None  # the server layer's, told once when the handshake ends

    def attach(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.abort = transport, transport.abort

    def handshaken(self) -> None:
        """Its TLS handshake ended (done or failed): its place among the handshakes under way is free."""
        done, self.on_handshaken = self.on_handshaken, None
        if done is not None:
            done()


class ConnectionGuard:
    """Counts per source and in all, the eviction of unproven connections near the descriptor limit,
    and the timeouts the server layer applies (see the module docstring)."""

    def __init__(self, max_per_source: int = 2000, handshake_timeout: float = 10.0, header_timeout: float = 15.0):
        self.configure(max_per_source, handshake_timeout, header_timeout)
        self.slots: dict[int, Slot] = {}  # id(slot) -> slot, in arrival order (oldest first)
        self.per_source: Counter[str] = Counter()
        self.refused = 0  # beyond a source's limit
        self.evicted = 0  # unproven connections closed to keep descriptors in reserve
        self.trims = 0
        self._peak = 0
        self._trim = _malloc_trim()
        self._sweeper: asyncio.TimerHandle | None = None
        self.capacity = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - RESERVE

    def configure(self, max_per_source: int, handshake_timeout: float, header_timeout: float) -> None:
        self.max_per_source = max_per_source
        self.handshake_timeout = handshake_timeout
        self.header_timeout = header_timeout

    def configure_from(self, settings) -> None:
        """From the /appliance ``security.connections`` settings."""
        self.configure(settings.max_per_source, settings.handshake_timeout_seconds, settings.header_timeout_seconds)

    # --- admission ---------------------------------------------------------------------------------------
    def admit(self, source: str) -> Slot | None:
        """A slot for a connection just accepted from ``source``, or None (the caller closes it): the source
        is at its limit."""
        if self.per_source[source] >= self.max_per_source:
            self.refused += 1
            return None
        while len(self.slots) >= self.capacity and self._evict_one():
            pass
        slot = Slot(source)
        self.slots[id(slot)] = slot
        self.per_source[source] += 1
        self._peak = max(self._peak, len(self.slots))
        self._ensure_sweeper()
        return slot

    def _evict_one(self) -> bool:
        for slot in self.slots.values():  # oldest first
            if not slot.proven and not slot.released:
                self.evicted += 1
                slot.abort()
                self.release(slot)
                return True
        return False

    def release(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        self.slots.pop(id(slot), None)
        self.per_source[slot.source] -= 1
        if self.per_source[slot.source] <= 0:
            del self.per_source[slot.source]

    # --- the sweep ---------------------------------------------------------------------------------------
    def _ensure_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self.sweep)

    def sweep(self) -> None:
        """Release the slots of closed connections; hand freed memory back after a flood."""
        self._sweeper = None
        for slot in [s for s in self.slots.values() if s.transport is not None and s.transport.is_closing()]:
            self.release(slot)
        closed = self._peak - len(self.slots)
        if closed >= TRIM_AFTER or (closed >= TRIM_MIN and not self.slots):  # a flood ended, or waned a lot
            self.trim()
        if self.slots:
            self._ensure_sweeper()

    def trim(self) -> None:
        self._peak = len(self.slots)
        gc.collect()  # the cycles a connection can leave behind (see the module docstring) go first
        if self._trim is not None:
            self._trim(0)
            self.trims += 1

    def stats(self) -> dict:
        return {"connections": len(self.slots), "sources": len(self.per_source), "refused": self.refused,
                "evicted": self.evicted, "trims": self.trims, "capacity": self.capacity,
                "max_per_source": self.max_per_source}
