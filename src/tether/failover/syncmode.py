"""Synchronous mode (issue: RPO 0): with ``sync_commit: sync`` on the
primary, a change is acknowledged to its caller only once the backup has
durably applied it (its ``/peer/v1/ack`` reached the entry).

The web layer calls ``barrier(head)`` before it answers an unsafe request
(web/app.py ``ReplicationBarrier``). If the backup does not confirm within
``sync_timeout_ms``:

- ``strict``: the caller gets 503 ``not_replicated`` (the change is on the
  primary, not yet on the backup: said so), and new writes are refused by
  the write fence until the backup confirms again;
- ``fallback``: the answer goes out, the pair runs asynchronously from then
  on until the backup has caught up, and status and the audit log say so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from tether.core.errors import TetherError

log = logging.getLogger("tether.failover")


class NotReplicated(TetherError):
    status, code = 503, "not_replicated"


class SyncMode:
    def __init__(self, settings: Callable, is_primary: Callable[[], bool], acked: Callable[[], int | None],
                 audit: Callable[[str, dict], None]):
        self.settings, self.is_primary, self.acked, self.audit = settings, is_primary, acked, audit
        self.degraded: str | None = None  # why the pair runs asynchronously although synchronous is set
        self._waiters: list[tuple[int, asyncio.Future]] = []

    def active(self) -> bool:
        try:
            return self.is_primary() and self.settings().sync_commit == "sync"
        except Exception:  # no site
            return False

    def on_ack(self, through: int) -> None:
        """Called on the event loop for every acknowledgement from the backup."""
        if self.degraded:
            self.degraded = None
            self.audit("failover.sync_mode.restored", {"through": through})
            log.warning("synchronous mode: the backup confirms again (through %s)", through)
        keep = []
        for seq, fut in self._waiters:
            if seq <= through:
                if not fut.done():
                    fut.set_result(True)
            else:
                keep.append((seq, fut))
        self._waiters = keep

    def fence(self) -> None:
        """The write fence's extra check: strict mode refuses writes while the backup does not confirm."""
        if self.degraded and self.degraded.startswith("strict") and self.active():
            raise NotReplicated("synchronous mode (strict): the backup does not confirm changes, so none are "
                                "accepted until it does", hint="check the backup (tether failover status), or "
                                "set sync_fallback to fallback to continue asynchronously")

    async def barrier(self, head: int) -> None:
        if not self.active():
            return
        through = self.acked()
        if through is not None and through >= head:
            return
        fs = self.settings()
        if self.degraded and fs.sync_fallback == "fallback":
            return  # running asynchronously until the backup catches up
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((head, fut))
        try:
            await asyncio.wait_for(fut, fs.sync_timeout_ms / 1000)
            return
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters = [(s, f) for s, f in self._waiters if f is not fut]
        if fs.sync_fallback == "fallback":
            self.degraded = f"fallback: the backup did not confirm within {fs.sync_timeout_ms} ms (since {time.ctime()})"
            self.audit("failover.sync_mode.fallback", {"head": head, "timeout_ms": fs.sync_timeout_ms})
            log.warning("synchronous mode: %s; continuing asynchronously", self.degraded)
            return
        self.degraded = f"strict: the backup did not confirm within {fs.sync_timeout_ms} ms (since {time.ctime()})"
        self.audit("failover.sync_mode.strict_refusal", {"head": head, "timeout_ms": fs.sync_timeout_ms})
        raise NotReplicated(f"the change is committed on the primary, but the backup did not confirm it within "
                            f"{fs.sync_timeout_ms} ms (synchronous mode, strict); further changes are refused "
                            "until it does", hint="check the backup: tether failover status")
