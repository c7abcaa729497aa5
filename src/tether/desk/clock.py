"""Where the desk gets "now" from, and its timestamp format.

``SystemClock`` is the real one. ``FileClock`` (``tether-desk serve
--clock-file PATH``) reads the current instant from a file on every call; it
exists so tests and rehearsals can move the desk through days of business time
without waiting, and it is only ever used when that flag is given explicitly
(the desk then reports ``"clock": "file"`` in /api/health and shows a banner in
the HTML pages). ``FixedClock`` serves ``tether-desk jobs run --now``.

Timestamps are stored and returned as ISO 8601 strings in UTC
(``2027-01-05T16:00:00+00:00``) so they sort as text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tether.core.errors import Invalid

UTC = timezone.utc
# the instants the desk takes from outside (an RMA step's time, --now, the clock file): far enough either
# side of any real one, and near enough that the weeks added to them stay within datetime's range
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)


def parse_instant(text: str, *, field: str = "at") -> datetime:
    """An aware datetime from ISO 8601 text, in UTC; a missing offset, or an instant before 2000 or
    from 3000 on, is refused."""
    try:
        t = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{text!r} is not an ISO 8601 date and time", field=field) from None
    if t.tzinfo is None:
        raise Invalid(f"{text!r} has no UTC offset (write e.g. 2027-01-05T10:00-06:00)", field=field)
    try:
        t = t.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before the first instant datetime holds
        t = None
    if t is None or not EARLIEST <= t < LATEST:
        raise Invalid(f"{text!r} is out of range: give a time from the year 2000 to 2999", field=field)
    return t


def iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat() if t is not None else None


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SystemClock:
    kind = "system"

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


class FixedClock:
    kind = "fixed"

    def __init__(self, at: datetime):
        self.at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at


class FileClock:
    kind = "file"

    def __init__(self, path: Path):
        self.path = Path(path)

    def now(self) -> datetime:
        return parse_instant(self.path.read_text(), field="clock_file")

    def set(self, at: datetime) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(iso(at) + "\n")
        tmp.replace(self.path)
