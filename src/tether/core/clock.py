"""The one clock that lifetimes and deadlines read: ``now()`` (wall clock,
seconds since the epoch), ``now_utc()`` (the same as an aware datetime) and
``monotonic()`` (for measuring intervals), and ``span(seconds)``, a
duration in words for pages and messages. Login-session and API-token
lifetimes and the certificates' expiry warnings call these instead of
``time.time()`` or ``datetime.now()``. Timestamps that only record when
something happened, and the validity dates written into new certificates,
keep the system clock.

Test seam: ignored unless the environment variable ``TETHER_CLOCK_FILE`` is
set. When it names a file, ``now()`` and ``now_utc()`` add the offset in
seconds written in that file (a float such as ``3600`` or ``-1.5``), so a
test can move a running appliance past a lifetime instead of sleeping it
out. A missing, unreadable or malformed file counts as 0. The file is read
again only when it changes (its inode, size or modification time, checked
with one ``stat`` per call); writers SHOULD replace it (write aside, then
rename), which changes the inode even within one tick of the filesystem's
timestamps. ``monotonic()`` is never offset.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time

ENV_CLOCK_FILE = "TETHER_CLOCK_FILE"

_cached: tuple[tuple, float] | None = None  # ((path, inode, size, mtime_ns), offset)


def offset() -> float:
    """The test offset in seconds: 0 unless ``TETHER_CLOCK_FILE`` names a readable file."""
    global _cached
    path = os.environ.get(ENV_CLOCK_FILE)
    if not path:
        return 0.0
    try:
        st = os.stat(path)
    except OSError:
        return 0.0
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with open(path, encoding="utf-8") as f:
            value = float(f.read().strip() or 0)
    except (OSError, ValueError, UnicodeDecodeError):
        value = 0.0
    if not math.isfinite(value):
        value = 0.0
    _cached = (key, value)
    return value


def now() -> float:
    """Seconds since the epoch: ``time.time()``, plus the test offset when one is set."""
    return time.time() + offset()


def now_utc() -> dt.datetime:
    """``now()`` as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(now(), dt.timezone.utc)


def monotonic() -> float:
    """``time.monotonic()``: for intervals; never offset."""
    return time.monotonic()


def span(seconds: float) -> str:
    """A duration in words, as pages and messages say it: ``42 s``, ``5 min``, ``3.2 h``, ``1.5 days``."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
