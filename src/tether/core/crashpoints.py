"""Crash points for crash-injection tests (ROB-01).

Code that must survive a crash at any moment calls ``checkpoint(label)`` at
each step. Normally that does nothing. When armed with a number N (the
``TETHER_CRASH_AT`` variable, or ``arm(N)`` in a forked test child), the N-th
counted checkpoint kills the process with SIGKILL, exactly as a power cut
would, and ``TETHER_CRASH_LOG`` (if set) receives the label of the point
reached. ``observe(fn)`` calls ``fn(n, label)`` at every counted checkpoint
(a test's trace of which points a run passes, in order); it never changes
what the code does.

Which checkpoints count (so that a test numbers only the points of the code
it is about, the same in every run):

- ``TETHER_CRASH_ONLY`` (``only=``): comma-separated label prefixes; only
  checkpoints whose label starts with one of them count.
- ``TETHER_CRASH_SKIP`` (``skip=``): label prefixes that never count.
- ``TETHER_CRASH_FROM`` (``start=``): a label prefix; nothing counts before
  the first checkpoint whose label starts with it (that one is point 1).

Freezing at a point (a process stopped where a scheduler or a debugger
could stop it): with ``TETHER_STOP_AT`` (a label prefix) and
``TETHER_STOP_FILE`` (a path) set, the first such checkpoint reached while
that file exists removes it and stops the process (SIGSTOP); SIGCONT
resumes it right there. Independent of the counting above.
"""

from __future__ import annotations

import os
import signal
from typing import Callable


def _prefixes(text: str | None) -> tuple[str, ...]:
    return tuple(p for p in (text or "").split(",") if p)


_armed: int | None = int(os.environ["TETHER_CRASH_AT"]) if os.environ.get("TETHER_CRASH_AT") else None
_only: tuple[str, ...] = _prefixes(os.environ.get("TETHER_CRASH_ONLY"))
_skip: tuple[str, ...] = _prefixes(os.environ.get("TETHER_CRASH_SKIP"))
_start: str | None = os.environ.get("TETHER_CRASH_FROM") or None
_started = _start is None
_count = 0
_observer: Callable[[int, str], None] | None = None
_stop_at: str | None = os.environ.get("TETHER_STOP_AT") or None
_stop_file: str | None = os.environ.get("TETHER_STOP_FILE") or None


def arm(n: int | None, *, only: tuple[str, ...] = (), skip: tuple[str, ...] = (), start: str | None = None) -> None:
    """Count from here (nothing counted so far): kill at the ``n``-th counted point (None: never)."""
    global _armed, _count, _only, _skip, _start, _started
    _armed, _count, _only, _skip, _start, _started = n, 0, tuple(only), tuple(skip), start, start is None


def count() -> int:
    return _count


def observe(fn: Callable[[int, str], None] | None) -> None:
    global _observer
    _observer = fn


def _stop_here() -> None:
    try:
        os.unlink(_stop_file)  # type: ignore[arg-type]
    except OSError:
        return  # not asked (or another thread took it)
    os.kill(os.getpid(), signal.SIGSTOP)


def checkpoint(label: str) -> None:
    global _count, _started
    if _stop_at is not None and _stop_file is not None and label.startswith(_stop_at):
        _stop_here()
    if _only and not label.startswith(_only):
        return
    if _skip and label.startswith(_skip):
        return
    if not _started:
        if not label.startswith(_start):
            return
        _started = True
    _count += 1
    if _observer is not None:
        _observer(_count, label)
    if _armed is not None and _count >= _armed:
        log = os.environ.get("TETHER_CRASH_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{_count} {label}\n")
        os.kill(os.getpid(), signal.SIGKILL)
