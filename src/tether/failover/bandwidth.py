"""The data-sync bandwidth limit (FO-02): a token bucket that the backup's
readers (the change stream and blob transfers) pass every chunk through, so
together they never read faster than the limit; TCP flow control then slows
the primary's sending. A limit of 0 means no limit. The limit is read at
every chunk, so a change of the setting applies at once."""

from __future__ import annotations

import threading
import time
from typing import Callable

BURST_SECONDS = 0.25  # the bucket holds at most this much of the rate


class Bandwidth:
    def __init__(self, limit_kbps: Callable[[], int], clock=time.monotonic, sleep=time.sleep):
        self.limit_kbps = limit_kbps
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = 0.0
        self._at = clock()

    def take(self, n: int) -> None:
        """Wait until ``n`` bytes may be read."""
        kbps = self.limit_kbps()
        if kbps <= 0:
            return
        rate = kbps * 1000 / 8  # bytes per second (kilobits, as network limits are written)
        with self._lock:
            now = self.clock()
            self._tokens = min(rate * BURST_SECONDS, self._tokens + (now - self._at) * rate)
            self._at = now
            self._tokens -= n
            wait = -self._tokens / rate if self._tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
