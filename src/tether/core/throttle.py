"""Login throttling (SEC-01).

Failed logins are counted per (realm, username) and per (realm, source
address) within a sliding window; past the limit further attempts are refused
with a growing lock-out, whatever the password, until the lock expires. A
successful login clears the username's counter.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .errors import Throttled


@dataclass
class _Counter:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    lockouts: int = 0


class LoginThrottle:
    def __init__(self, max_failures: int = 5, window: float = 900.0, base_lock: float = 60.0, max_lock: float = 900.0):
        self.max_failures = max_failures
        self.window = window
        self.base_lock = base_lock
        self.max_lock = max_lock
        self._counters: dict[tuple, _Counter] = {}
        self._lock = threading.Lock()

    def _keys(self, realm: str, username: str, ip: str | None) -> list[tuple]:
        keys = [(realm, "user", username.lower())]
        if ip:
            keys.append((realm, "ip", ip))
        return keys

    def check(self, realm: str, username: str, ip: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            for key in self._keys(realm, username, ip):
                c = self._counters.get(key)
                if c and c.locked_until > now:
                    wait = int(c.locked_until - now) + 1
                    raise Throttled(
                        f"too many failed logins; try again in {wait} s",
                        retry_after=wait,
                        hint="wait for the lock-out to end, then log in with the right password",
                    )

    def failure(self, realm: str, username: str, ip: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            for key in self._keys(realm, username, ip):
                c = self._counters.setdefault(key, _Counter())
                c.failures = [t for t in c.failures if now - t < self.window] + [now]
                if len(c.failures) >= self.max_failures:
                    c.locked_until = now + min(self.max_lock, self.base_lock * (2 ** c.lockouts))
                    c.lockouts += 1
                    c.failures.clear()

    def success(self, realm: str, username: str) -> None:
        with self._lock:
            self._counters.pop((realm, "user", username.lower()), None)
