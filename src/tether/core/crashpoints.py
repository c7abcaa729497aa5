"""Crash points for crash-injection tests (ROB-01).

Code that must survive a crash at any moment calls ``checkpoint(label)`` at
each step. Normally that does nothing. When armed with a number N (the
``TETHER_CRASH_AT`` variable, or ``arm(N)`` in a forked test child), the N-th
checkpoint kills the process with SIGKILL, exactly as a power cut would,
and ``TETHER_CRASH_LOG`` (if set) receives the label of the point reached.
``observe(fn)`` calls ``fn(n, label)`` at every checkpoint (a test's trace of
which points a run passes, in order); it never changes what the code does.
"""

from __future__ import annotations

import os
import signal
from typing import Callable

_armed: int | None = int(os.environ["TETHER_CRASH_AT"]) if os.environ.get("TETHER_CRASH_AT") else None
_count = 0
_observer: Callable[[int, str], None] | None = None


def arm(n: int | None) -> None:
    global _armed, _count
    _armed, _count = n, 0


def count() -> int:
    return _count


def observe(fn: Callable[[int, str], None] | None) -> None:
    global _observer
    _observer = fn


def checkpoint(label: str) -> None:
    global _count
    _count += 1
    if _observer is not None:
        _observer(_count, label)
    if _armed is not None and _count >= _armed:
        log = os.environ.get("TETHER_CRASH_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{_count} {label}\n")
        os.kill(os.getpid(), signal.SIGKILL)
