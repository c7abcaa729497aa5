"""The last hour of connected clients and sync lag (OPS-07's chart), kept in
memory by the running appliance: the runner job ``dashboard-sampler`` calls
``sample`` every ``INTERVAL`` seconds; a restart starts an empty hour."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

INTERVAL = 10.0
WINDOW = 3600.0


@dataclass(frozen=True)
class Sample:
    at: float
    clients: int
    lag_seconds: float | None
    lag_entries: int | None

    def public(self) -> dict:
        return {"at": self.at, "clients": self.clients, "lag_seconds": self.lag_seconds,
                "lag_entries": self.lag_entries}


class Sampler:
    def __init__(self, read: Callable[[], tuple[int, float | None, int | None]], window: float = WINDOW,
                 interval: float = INTERVAL):
        self._read = read  # () -> (connected clients, sync lag seconds, sync lag entries)
        self.window = window
        self.interval = interval
        self._samples: deque[Sample] = deque(maxlen=int(window / interval) + 2)
        self._lock = threading.Lock()

    def sample(self) -> Sample:
        clients, lag_s, lag_n = self._read()
        s = Sample(time.time(), clients, lag_s, lag_n)
        with self._lock:
            self._samples.append(s)
        return s

    def last_hour(self) -> list[Sample]:
        cut = time.time() - self.window
        with self._lock:
            return [s for s in self._samples if s.at >= cut]
