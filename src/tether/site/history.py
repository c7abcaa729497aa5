"""Logged history (SITE-03): session records with their events, presentation
logs, license usage, support-team activity, exit-survey answers and the
recordings index; recording bytes live in ``<data>/site/recordings``
(content-addressed), never in the database.

Listings are filtered by date range, user and type and paginated by a
keyset cursor (newest first), so a page costs the same on page 1 and page
10,000 of a million records. The HTML pages and the JSON API both call
``History.list``."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Callable, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, create_model

from tether.core.errors import Invalid, NotFound
from tether.core.shapes import of_table
from tether.core.validate import parse_model

from . import history_tables as H
from .resources import RS, check_edition

MAX_PAGE = 500
SESSION_KINDS = ("support", "jump", "shell", "tunnel", "show_my_screen")
RECORDING_KINDS = ("session", "command_shell", "tunnel", "presentation", "show_my_screen")
ORDERS = ("newest", "oldest")
# the reporting API's contract version (GET /api/reporting/info); raised on an incompatible change
REPORTING_API = 1
# how a recording is saved, by kind: (extension, media type); command shells are asciicast v2
# (playable with `asciinema play`), the other kinds opaque bytes as their clients upload them
RECORDING_FORMATS = {"command_shell": ("cast", "application/x-asciicast")}
OPAQUE_FORMAT = ("bin", "application/octet-stream")


@dataclass(frozen=True)
class HistoryKind:
    slug: str
    title: str
    table: sa.Table
    time_col: str
    user_col: str | None
    type_col: str | None
    edition: str | None = None
    client_cols: tuple[str, ...] = ()

    @property
    def page(self) -> type[BaseModel]:
        """A page of this kind as ``History.list`` answers it."""
        return _page(self.table)


@cache
def _page(table: sa.Table) -> type[BaseModel]:
    row = of_table(table)
    return create_model(f"{row.__name__}Page", items=(list[row], ...), next_cursor=(str | None, ...))


Recording = of_table(H.recordings, "Recording")  # a recording's index row
SessionEventRow = of_table(H.session_events, "SessionEventRow")


class SessionRecord(of_table(H.session_records, "SessionRow")):  # type: ignore[misc]
    """One session record with its events and recordings (``History.session``)."""
    events: list[SessionEventRow]  # type: ignore[valid-type]
    recordings: list[Recording]  # type: ignore[valid-type]


class ReportedSite(BaseModel):
    name: str
    edition: str
    version: str


class ReportingInfo(BaseModel):
    """What a reporting client checks first (``actions.history.reporting_info``)."""
    software_version: str
    reporting_api: int
    site: ReportedSite
    kinds: list[str]
    recording_kinds: list[str]


KINDS: dict[str, HistoryKind] = {k.slug: k for k in (
    HistoryKind("sessions", "Sessions", H.session_records, "started_at", "rep", "kind",
                client_cols=("jump_client", "customer_name", "customer_host")),
    HistoryKind("presentation-logs", "Presentation logs", H.presentation_logs, "started_at", "presenter",
                "presentation", edition=RS),
    HistoryKind("license-usage", "License usage", H.license_usage, "at", "username", "type"),
    HistoryKind("team-activity", "Support team activity", H.team_activity, "at", "username", "type"),
    HistoryKind("exit-survey-answers", "Exit survey answers", H.exit_survey_answers, "at", None, "survey",
                edition=RS),
    HistoryKind("recordings", "Recordings", H.recordings, "started_at", None, "kind"),
)}


def kind(slug: str, edition: str | None) -> HistoryKind:
    k = KINDS.get(slug)
    if k is None:
        raise NotFound(f"unknown history kind {slug!r}; known: {', '.join(KINDS)}")
    check_edition(k.edition, edition, k.title)
    return k


def recording_file(rec: dict) -> tuple[str, str]:
    """(file name, media type) a recording is downloaded as: ``recording-<id>-<kind>.<extension>``."""
    ext, media_type = RECORDING_FORMATS.get(rec["kind"], OPAQUE_FORMAT)
    return f"recording-{rec['id']}-{rec['kind']}.{ext}", media_type


def parse_time(value, field: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        d = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{field}: {text!r} is not a date (YYYY-MM-DD, ISO 8601 date-time or epoch seconds)",
                      field=field) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


def _cursor(t: float, i: int) -> str:
    return base64.urlsafe_b64encode(f"{t!r}:{i}".encode()).decode()


def _uncursor(c: str) -> tuple[float, int]:
    try:
        t, i = base64.urlsafe_b64decode(c.encode()).decode().split(":")
        return float(t), int(i)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor: not a cursor this server returned", field="cursor") from None


def _after_cursor(i: int) -> str:
    return base64.urlsafe_b64encode(f"after:{i}".encode()).decode()


def _unafter(c: str) -> int:
    try:
        tag, i = base64.urlsafe_b64decode(c.encode()).decode().split(":")
        if tag != "after":
            raise ValueError(tag)
        return int(i)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor: not a cursor this server returned for order=oldest", field="cursor") from None


class SessionStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rep: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Literal[SESSION_KINDS] = "support"  # type: ignore[valid-type]
    team: Annotated[str, Field(max_length=64)] | None = None
    customer_name: Annotated[str, Field(max_length=128)] = ""
    customer_host: Annotated[str, Field(max_length=253)] = ""
    jump_client: Annotated[str, Field(max_length=64)] | None = None
    started_at: float | None = None


class SessionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(pattern=r"^[a-z][a-z_.]{0,31}$")]
    actor: Annotated[str, Field(min_length=1, max_length=64)]
    data: dict = {}
    at: float | None = None


class History:
    def __init__(self, engine: sa.Engine, emit: Callable[[str, dict], None] | None = None):
        self.engine = engine
        self.emit = emit or (lambda _t, _d: None)

    # --- listing ------------------------------------------------------------------------------
    def list(self, k: HistoryKind, *, since=None, until=None, user: str | None = None, type: str | None = None,
             client: str | None = None, limit: int = 50, cursor: str | None = None,
             order: str = "newest") -> dict:
        """A page of ``k``. ``order="newest"`` (by time, then id, descending) is for people browsing;
        ``order="oldest"`` walks the records in the order they were written (ascending id) and its
        cursor names the last record returned, so a puller that keeps the last ``next_cursor`` and comes
        back later sees every record written since exactly once: site writers are serialised (SQLite's
        write lock; the change log's advisory lock on PostgreSQL), so ids become visible in increasing
        order and a record never appears behind a cursor already handed out. In that order
        ``next_cursor`` is always set when the page is not empty (the place to resume from), and the
        end is an empty page."""
        t = k.table
        tc, idc = t.c[k.time_col], t.c.id
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit: between 1 and {MAX_PAGE}", field="limit")
        if order not in ORDERS:
            raise Invalid(f"order: one of {', '.join(ORDERS)}", field="order")
        q = sa.select(t)
        lo, hi = parse_time(since, "since"), parse_time(until, "until")
        if lo is not None:
            q = q.where(tc >= lo)
        if hi is not None:
            q = q.where(tc < hi)
        if user:
            if k.user_col is None:
                raise Invalid(f"user: {k.title.lower()} are not filtered by user", field="user")
            q = q.where(t.c[k.user_col] == user)
        if type:
            q = q.where(t.c[k.type_col] == type)
        if client:
            if not k.client_cols:
                raise Invalid(f"client: {k.title.lower()} are not filtered by client", field="client")
            q = q.where(sa.or_(*(t.c[col] == client for col in k.client_cols)))
        if order == "oldest":
            after = _unafter(cursor) if cursor else None
            if after is not None:
                q = q.where(idc > after)
            q = q.order_by(idc.asc()).limit(limit)
            with self.engine.connect() as c:
                rows = [dict(r) for r in c.execute(q).mappings()]
            return {"items": rows, "next_cursor": _after_cursor(rows[-1]["id"]) if rows else cursor}
        if cursor:
            ct, ci = _uncursor(cursor)
            q = q.where(sa.or_(tc < ct, sa.and_(tc == ct, idc < ci)))
        q = q.order_by(tc.desc(), idc.desc()).limit(limit + 1)
        with self.engine.connect() as c:
            rows = [dict(r) for r in c.execute(q).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = _cursor(rows[-1][k.time_col], rows[-1]["id"]) if more else None
        return {"items": rows, "next_cursor": nxt}

    def session(self, lsid: str) -> dict:
        s, e, r = H.session_records, H.session_events, H.recordings
        with self.engine.connect() as c:
            row = c.execute(sa.select(s).where(s.c.lsid == lsid)).mappings().first()
            if row is None:
                raise NotFound(f"no session record {lsid!r}")
            events = [dict(x) for x in c.execute(sa.select(e).where(e.c.session_id == row["id"])
                                                 .order_by(e.c.at, e.c.id)).mappings()]
            recs = [dict(x) for x in c.execute(sa.select(r).where(r.c.session_id == row["id"])
                                               .order_by(r.c.id)).mappings()]
        return {**dict(row), "events": events, "recordings": recs}

    def recording(self, rec_id: int) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(H.recordings).where(H.recordings.c.id == rec_id)).mappings().first()
        if row is None:
            raise NotFound(f"no recording {rec_id}")
        return dict(row)

    # --- recording what happens -----------------------------------------------------------------
    def start_session(self, data: object) -> dict:
        body = parse_model(SessionStart, data)
        now = body.started_at or time.time()
        lsid = secrets.token_hex(16)
        with self.engine.begin() as c:
            sid = c.execute(H.session_records.insert().values(
                lsid=lsid, kind=body.kind, rep=body.rep, team=body.team, customer_name=body.customer_name,
                customer_host=body.customer_host, jump_client=body.jump_client, started_at=now)).inserted_primary_key[0]
            c.execute(H.session_events.insert().values(session_id=sid, at=now, type="session.start", actor=body.rep,
                                                       data={"customer": body.customer_name}))
        self.emit("session.start", {"lsid": lsid, "rep": body.rep, "kind": body.kind, "started_at": now})
        return self.session(lsid)

    def _sid(self, c, lsid: str) -> tuple[int, float | None]:
        row = c.execute(sa.select(H.session_records.c.id, H.session_records.c.ended_at)
                        .where(H.session_records.c.lsid == lsid)).first()
        if row is None:
            raise NotFound(f"no session record {lsid!r}")
        return row[0], row[1]

    def add_event(self, lsid: str, data: object) -> dict:
        body = parse_model(SessionEvent, data)
        with self.engine.begin() as c:
            sid, _ = self._sid(c, lsid)
            c.execute(H.session_events.insert().values(session_id=sid, at=body.at or time.time(), type=body.type,
                                                       actor=body.actor, data=body.data))
        return self.session(lsid)

    def end_session(self, lsid: str, reason: str = "ended", actor: str = "system", data: dict | None = None) -> dict:
        if not isinstance(reason, str) or not 1 <= len(reason) <= 32:
            raise Invalid("reason: 1-32 characters", field="reason")
        now = time.time()
        with self.engine.begin() as c:
            sid, ended = self._sid(c, lsid)
            if ended is not None:
                raise Invalid(f"session {lsid} has already ended", field="lsid")
            c.execute(H.session_records.update().where(H.session_records.c.id == sid)
                      .values(ended_at=now, end_reason=reason))
            c.execute(H.session_events.insert().values(session_id=sid, at=now, type="session.end", actor=actor,
                                                       data={**(data or {}), "reason": reason}))
        self.emit("session.end", {"lsid": lsid, "reason": reason, "ended_at": now})
        return self.session(lsid)

    def add_recording(self, lsid: str, kind: str, sha: str, size: int, started_at: float | None,
                      duration: float) -> dict:
        if kind not in RECORDING_KINDS:
            raise Invalid(f"kind: one of {', '.join(RECORDING_KINDS)}", field="kind")
        with self.engine.begin() as c:
            sid, _ = self._sid(c, lsid)
            rid = c.execute(H.recordings.insert().values(
                kind=kind, sha256=sha, size=size, session_id=sid, started_at=started_at or time.time(),
                duration_seconds=float(duration))).inserted_primary_key[0]
        return self.recording(rid)
