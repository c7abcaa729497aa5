"""The business clock (DESK-03) against an independent slow reference: a
hand-written holiday calendar (no `holidays` library) and minute-by-minute
stepping through local time via zoneinfo. Instants are biased towards DST
changes, year ends, holiday collisions and the 02:00/19:00 edges.
Only the hypothesis properties carry the DESK-03 marker; the examples here
are in-process checks, and the same rules are exercised over HTTP in
test_incidents.py (out-of-hours and holiday arrivals)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.desk import bizclock

CHICAGO = ZoneInfo("America/Chicago")
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# -- the reference calendar: the rules of DESK-03 written out by hand ----------

def _nth_weekday(year, month, weekday, n):
    d = date(year, month, 1)
    d += timedelta(days=(weekday - d.weekday()) % 7)
    return d + timedelta(weeks=n - 1)


def _last_weekday(year, month, weekday):
    d = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return d - timedelta(days=(d.weekday() - weekday) % 7)


def _easter(year):  # anonymous Gregorian algorithm
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _actual(year):
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    return [date(year, 1, 1), _nth_weekday(year, 1, 0, 3), _nth_weekday(year, 2, 0, 3),
            _easter(year) - timedelta(days=2), _last_weekday(year, 5, 0), date(year, 7, 4),
            _nth_weekday(year, 9, 0, 1), _nth_weekday(year, 10, 0, 2), date(year, 11, 11),
            thanksgiving, thanksgiving + timedelta(days=1), date(year, 12, 24), date(year, 12, 25)]


def _observed(year):
    """Weekday holidays stay; Saturday -> Friday, Sunday -> Monday; if taken,
    the other side of the same weekend; if that too, next free weekday after."""
    days = set(d for d in _actual(year) if d.weekday() < 5)
    for d in sorted(d for d in _actual(year) if d.weekday() >= 5):
        sat = d.weekday() == 5
        near = d + timedelta(days=-1 if sat else 1)
        far = d + timedelta(days=2 if sat else -2)
        if near not in days:
            days.add(near)
        elif far not in days:
            days.add(far)
        else:
            x = max(near, far) + timedelta(days=1)
            while x in days or x.weekday() >= 5:
                x += timedelta(days=1)
            days.add(x)
    return days


REF_HOLIDAYS = set()
for _y in range(1999, 2102):
    REF_HOLIDAYS |= _observed(_y)

_hour_memo: dict[int, bool] = {}


def ref_business_minute(m: int) -> bool:
    """Is the minute starting ``m`` minutes after the epoch business time?
    (Memoised per UTC hour: Chicago's offsets are whole hours.)"""
    h = m // 60
    if h not in _hour_memo:
        local = (EPOCH + timedelta(hours=h)).astimezone(CHICAGO)
        assert local.minute == 0
        _hour_memo[h] = local.weekday() < 5 and local.date() not in REF_HOLIDAYS and 2 <= local.hour < 19
    return _hour_memo[h]


def to_min(t: datetime) -> int:
    return int((t - EPOCH).total_seconds()) // 60


def from_min(m: int) -> datetime:
    return EPOCH + timedelta(minutes=m)


def ref_next(m: int) -> int:
    while not ref_business_minute(m):
        m += 1
    return m


def ref_add(m: int, minutes: int) -> int:
    if minutes == 0:
        return m
    count = 0
    while True:
        if ref_business_minute(m):
            count += 1
            if count == minutes:
                return m + 1
        m += 1


def ref_between(a: int, b: int) -> int:
    return sum(1 for m in range(a, b) if ref_business_minute(m))


# -- strategies ---------------------------------------------------------------

def _anchors():
    out = []
    for y in range(2020, 2041):
        for d in (_nth_weekday(y, 3, 6, 2), _nth_weekday(y, 11, 6, 1),  # DST changes (Sundays)
                  date(y, 12, 24), date(y, 12, 31), date(y, 1, 1), _nth_weekday(y, 11, 3, 4),
                  _easter(y) - timedelta(days=2), date(y, 7, 4), date(y, 11, 11)):
            out.append(datetime(d.year, d.month, d.day, tzinfo=CHICAGO))
    return out


ANCHORS = _anchors()
LO, HI = to_min(datetime(2020, 1, 1, tzinfo=UTC)), to_min(datetime(2040, 12, 31, tzinfo=UTC))
instants = st.one_of(
    st.integers(LO, HI),
    st.builds(lambda a, off: to_min(a) + off, st.sampled_from(ANCHORS), st.integers(-5 * 1440, 5 * 1440)),
    # exactly on or next to opening and closing times of random days
    st.builds(lambda day, hour, off: to_min(datetime(2020, 1, 1, hour, tzinfo=CHICAGO) + timedelta(days=day)) + off,
              st.integers(0, 7600), st.sampled_from([2, 19]), st.integers(-2, 2)),
)
durations = st.one_of(st.integers(0, 3 * 17 * 60), st.sampled_from([0, 1, 30, 24 * 60, 17 * 60]))


# -- properties ---------------------------------------------------------------

def test_holiday_calendar_matches_the_reference_for_a_century():
    for year in range(2000, 2100):
        assert set(bizclock.holidays_for(year)) == {d for d in REF_HOLIDAYS if d.year == year}, year


@pytest.mark.parametrize("day, name", [
    (date(2027, 12, 24), "Christmas Eve"),
    (date(2027, 12, 27), "Christmas Day (observed)"),  # Saturday Christmas, Friday taken by Christmas Eve
    (date(2027, 12, 31), "New Year's Day (observed)"),  # New Year's Day 2028 is a Saturday
    (date(2023, 12, 22), "Christmas Eve (observed)"),  # Sunday Christmas Eve, Monday taken by Christmas
    (date(2022, 12, 23), "Christmas Eve (observed)"),
    (date(2022, 12, 26), "Christmas Day (observed)"),
    (date(2026, 7, 3), "Independence Day (observed)"),
    (date(2027, 3, 26), "Good Friday"),
    (date(2027, 11, 26), "Day after Thanksgiving"),
])
def test_collisions_and_observed_days(day, name):
    assert bizclock.holiday_name(day) == name
    assert not bizclock.is_business_day(day)


def test_juneteenth_is_not_on_the_list():
    assert bizclock.is_business_day(date(2027, 6, 18)) and bizclock.holiday_name(date(2027, 6, 19)) is None


@pytest.mark.req("DESK-03")
@settings(max_examples=1500, **SETTINGS)
@given(instants)
def test_next_business_instant_matches_reference(m):
    t = from_min(m)
    assert to_min(bizclock.next_business_instant(t)) == ref_next(m)
    assert bizclock.is_business_time(t) == ref_business_minute(m)


@pytest.mark.req("DESK-03")
@settings(max_examples=1500, **SETTINGS)
@given(instants, durations)
def test_add_business_matches_reference(m, minutes):
    got = bizclock.add_business(from_min(m), timedelta(minutes=minutes))
    assert got == from_min(ref_add(m, minutes))


@pytest.mark.req("DESK-03")
@settings(max_examples=1000, **SETTINGS)
@given(instants, st.integers(0, 6 * 1440))
def test_business_between_matches_reference(m, span):
    got = bizclock.business_between(from_min(m), from_min(m + span))
    assert got == timedelta(minutes=ref_between(m, m + span))


@pytest.mark.req("DESK-03")
@settings(max_examples=1000, **SETTINGS)
@given(instants, durations)
def test_add_then_measure_round_trips(m, minutes):
    t = from_min(m)
    end = bizclock.add_business(t, timedelta(minutes=minutes))
    assert bizclock.business_between(t, end) == timedelta(minutes=minutes)


def test_arrival_on_dst_weekend_counts_from_monday_0200_local():
    # Saturday before the March 2027 change (CST) -> Monday 02:00 CDT
    t = datetime(2027, 3, 13, 12, 0, tzinfo=CHICAGO)
    start = bizclock.next_business_instant(t)
    assert start == datetime(2027, 3, 15, 2, 0, tzinfo=CHICAGO)
    assert start.astimezone(UTC).hour == 7  # CDT is UTC-5
    assert datetime(2027, 3, 12, 2, 0, tzinfo=CHICAGO).astimezone(UTC).hour == 8  # CST the Friday before


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        bizclock.add_business(datetime(2027, 1, 5, 10), timedelta(minutes=1))
