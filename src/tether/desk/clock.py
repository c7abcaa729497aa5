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


def parse_instant(text: str, *, field: str = "at") -> datetime:
    """An aware datetime from ISO 8601 text; a missing offset is refused."""
    try:
        t = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{text!r} is not an ISO 8601 date and time", field=field) from None
    if t.tzinfo is None:
        raise Invalid(f"{text!r} has no UTC offset (write e.g. 2027-01-05T10:00-06:00)", field=field)
    return t.astimezone(UTC)


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
