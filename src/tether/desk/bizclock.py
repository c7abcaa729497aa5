"""The business clock (DESK-03): which instants are business time, and
arithmetic in business time.

Business time is 02:00-19:00 US Central time (America/Chicago, so CST or CDT
as in force that day), Monday to Friday, except the observed holidays of
``holidays_for``. Holidays come from the maintained ``holidays`` library (US
public and unofficial categories, selected by name); the library lacks the day
after Thanksgiving, which is added here, and its observance rule is replaced
by ours:

* a holiday on a weekday is observed that day;
* a holiday on Saturday is observed on Friday, on Sunday on Monday (the
  nearest weekday);
* collision: when that weekday is already a holiday (e.g. Christmas Day on
  Saturday 2027-12-25 whose Friday is Christmas Eve), the holiday is observed
  on the weekday on the other side of the same weekend (Monday 2027-12-27;
  for Christmas Eve on Sunday 2023-12-24, Friday 2023-12-22); should that be
  taken too, on the first free weekday after the weekend. No holiday is ever
  lost and no day carries two.

Everything takes and returns timezone-aware datetimes; results are in UTC.
This module owns no storage and no notion of incidents (see ``sla``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

TZ = ZoneInfo("America/Chicago")
UTC = timezone.utc
OPENS = time(2, 0)
CLOSES = time(19, 0)
DAY_LENGTH = timedelta(hours=17)

# The holiday list of DESK-03, by the names the `holidays` library uses.
LIBRARY_NAMES = {
    "New Year's Day": "New Year's Day",
    "Martin Luther King Jr. Day": "Martin Luther King Jr. Day",
    "Washington's Birthday": "Presidents' Day",
    "Good Friday": "Good Friday",
    "Memorial Day": "Memorial Day",
    "Independence Day": "Independence Day",
    "Labor Day": "Labor Day",
    "Columbus Day": "Columbus Day",
    "Veterans Day": "Veterans Day",
    "Thanksgiving Day": "Thanksgiving Day",
    "Christmas Eve": "Christmas Eve",
    "Christmas Day": "Christmas Day",
}
DAY_AFTER_THANKSGIVING = "Day after Thanksgiving"
MIN_YEAR, MAX_YEAR = 1990, 2199


@lru_cache(maxsize=512)
def _actual(year: int) -> tuple[tuple[date, str], ...]:
    """The listed holidays of ``year`` on their actual dates."""
    lib = holidays_lib.US(years=year, categories=("public", "unofficial"), observed=False)
    found: list[tuple[date, str]] = []
    for d, names in lib.items():
        for name in names.split("; "):
            if name in LIBRARY_NAMES:
                found.append((d, LIBRARY_NAMES[name]))
    if len({n for _, n in found}) != len(LIBRARY_NAMES):  # the library renamed something
        missing = set(LIBRARY_NAMES.values()) - {n for _, n in found}
        raise RuntimeError(f"holidays library no longer provides {sorted(missing)} for {year}")
    thanksgiving = next(d for d, n in found if n == "Thanksgiving Day")
    found.append((thanksgiving + timedelta(days=1), DAY_AFTER_THANKSGIVING))
    return tuple(sorted(found))


@lru_cache(maxsize=512)
def _observed(year: int) -> dict[date, str]:
    """Observed days of the holidays whose actual date falls in ``year``."""
    taken: dict[date, str] = {}
    actual = _actual(year)
    for d, name in actual:  # weekday holidays first: they never move
        if d.weekday() < 5:
            taken[d] = name
    for d, name in actual:
        if d.weekday() < 5:
            continue
        if d.weekday() == 5:
            near, far = d - timedelta(days=1), d + timedelta(days=2)
        else:
            near, far = d + timedelta(days=1), d - timedelta(days=2)
        for day in (near, far):
            if day not in taken:
                break
        else:
            day = max(near, far) + timedelta(days=1)
            while day in taken or day.weekday() >= 5:
                day += timedelta(days=1)
        taken[day] = f"{name} (observed)"
    return taken


def holidays_for(year: int) -> dict[date, str]:
    """Observed holidays falling in calendar year ``year`` (a holiday of the
    next year may be observed on 31 December, e.g. New Year's Day 2028)."""
    return dict(_holidays_in(year))


@lru_cache(maxsize=512)
def _holidays_in(year: int) -> dict[date, str]:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"the business calendar covers {MIN_YEAR}-{MAX_YEAR}, not {year}")
    out: dict[date, str] = {}
    for y in (year - 1, year, year + 1):
        for d, name in _observed(y).items():
            if d.year == year:
                out[d] = name
    return dict(sorted(out.items()))


def holiday_name(d: date) -> str | None:
    return _holidays_in(d.year).get(d)


def is_business_day(d: date) -> bool:
    return d.weekday() < 5 and d not in _holidays_in(d.year)


def window(d: date) -> tuple[datetime, datetime]:
    """The business hours of local date ``d`` as a UTC [start, end) pair."""
    return (datetime.combine(d, OPENS, TZ).astimezone(UTC), datetime.combine(d, CLOSES, TZ).astimezone(UTC))


def _check(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("business-clock arithmetic needs timezone-aware datetimes")
    return t.astimezone(UTC)


def _windows_from(t: datetime):
    """Business windows whose end lies after ``t``, in order."""
    d = t.astimezone(TZ).date() - timedelta(days=1)
    while True:
        if is_business_day(d):
            start, end = window(d)
            if end > t:
                yield start, end
        d += timedelta(days=1)


def is_business_time(t: datetime) -> bool:
    t = _check(t)
    start, end = next(_windows_from(t))
    return start <= t < end


def next_business_instant(t: datetime) -> datetime:
    """``t`` itself during business hours, else the start of the next business
    period: how an arrival outside hours is counted (DESK-03)."""
    t = _check(t)
    start, _ = next(_windows_from(t))
    return max(start, t)


def add_business(t: datetime, duration: timedelta) -> datetime:
    """The earliest instant by which ``duration`` of business time has elapsed
    since ``t``. A zero duration returns ``t``; a positive one that runs out
    exactly at closing returns the closing time, not the next opening."""
    t = _check(t)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if duration == timedelta(0):
        return t
    remaining = duration
    for start, end in _windows_from(t):
        begin = max(start, t)
        if remaining <= end - begin:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable")  # pragma: no cover


def business_between(a: datetime, b: datetime) -> timedelta:
    """Business time elapsed from ``a`` to ``b`` (zero when b <= a)."""
    a, b = _check(a), _check(b)
    total = timedelta(0)
    if b <= a:
        return total
    for start, end in _windows_from(a):
        if start >= b:
            break
        total += min(end, b) - max(start, a)
    return total
