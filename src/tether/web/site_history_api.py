"""Logged history in the JSON API (SITE-03): filtered, paginated listings
(``/reporting/<kind>``), a session with its events and recordings,
recording downloads, the outbound-event deliveries, the change log; and the
ingest endpoints integrations and the client gateway use to record sessions
(``/command/sessions...``, permission ``command``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import FileResponse

from tether.core.errors import Invalid
from tether.site import changelog
from tether.site import history as H
from tether.site import permissions as P

from .auth import Principal, client_ip
from .site_api import Caller, site_of

router = APIRouter()
Lsid = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the session's id (lsid)")]


def history_kind(request: Request, p: Principal, slug: str) -> H.HistoryKind:
    p.require(P.REPORTING)
    return H.kind(slug, site_of(request).edition)


def do_history_list(request: Request, p: Principal, slug: str, **filters) -> dict:
    k = history_kind(request, p, slug)
    return site_of(request).history.list(k, **filters)


def _list_route(slug: str, k: H.HistoryKind) -> None:
    @router.get(f"/reporting/{slug}", summary=f"{k.title}: newest first, filtered, paginated by cursor",
                name=f"history_{slug}")
    def list_(request: Request, p: Caller,
              since: Annotated[str | None, Query(description="from (inclusive): YYYY-MM-DD, ISO 8601 or epoch")] = None,
              until: Annotated[str | None, Query(description="until (exclusive)")] = None,
              user: Annotated[str | None, Query(max_length=64)] = None,
              type: Annotated[str | None, Query(max_length=64)] = None,
              limit: Annotated[int, Query(ge=1, le=H.MAX_PAGE)] = 50,
              cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict:
        return do_history_list(request, p, slug, since=since, until=until, user=user, type=type, limit=limit,
                               cursor=cursor)


for _slug, _k in H.KINDS.items():
    _list_route(_slug, _k)


@router.get("/reporting/sessions/{lsid}", summary="One session record with its events and recordings")
def get_session(request: Request, lsid: Lsid, p: Caller) -> dict:
    p.require(P.REPORTING)
    return site_of(request).history.session(lsid)


@router.get("/reporting/recordings/{rec_id}/content", summary="Download a recording", response_class=FileResponse)
def get_recording(request: Request, rec_id: int, p: Caller) -> FileResponse:
    p.require(P.REPORTING)
    site = site_of(request)
    rec = site.history.recording(rec_id)
    return FileResponse(site.recordings.path(rec["sha256"]), media_type="application/octet-stream",
                        filename=f"recording-{rec_id}-{rec['kind']}.bin")


@router.get("/reporting/event-deliveries", summary="Outbound event deliveries (webhooks, e-mail), newest first")
def get_deliveries(request: Request, p: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    p.require(P.REPORTING)
    return site_of(request).events.deliveries(limit)


@router.get("/changes", summary="The site's change log after a sequence number (docs/formats/changelog.md)")
def get_changes(request: Request, p: Caller, after: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict:
    p.require(P.BACKUP)
    with site_of(request).engine.connect() as c:
        entries = changelog.entries_after(c, after, limit)
        last = changelog.last_seq(c)
    return {"format": changelog.FORMAT_VERSION, "last_seq": last, "entries": entries}


# --- ingest --------------------------------------------------------------------------------------
def _ingest(request: Request, p: Principal):
    p.require(P.COMMAND)
    return site_of(request)


@router.post("/command/sessions", status_code=201, summary="Record the start of a support session")
def post_session(request: Request, body: Annotated[dict[str, Any], Body()], p: Caller) -> dict:
    site = _ingest(request, p)
    s = site.history.start_session(body)
    site.audit.record(p.name, "history.session.start", s["lsid"], client_ip(request), {"rep": s["rep"]})
    return s


@router.post("/command/sessions/{lsid}/events", status_code=201, summary="Add an event to a session record")
def post_session_event(request: Request, lsid: Lsid, body: Annotated[dict[str, Any], Body()], p: Caller) -> dict:
    return _ingest(request, p).history.add_event(lsid, body)


@router.post("/command/sessions/{lsid}/end", summary="Record the end of a session")
def post_session_end(request: Request, lsid: Lsid, p: Caller,
                     body: Annotated[dict[str, Any] | None, Body()] = None) -> dict:
    site = _ingest(request, p)
    s = site.history.end_session(lsid, (body or {}).get("reason", "ended"), p.name)
    site.audit.record(p.name, "history.session.end", lsid, client_ip(request))
    return s


@router.put("/command/sessions/{lsid}/recordings/{kind}", status_code=201,
            summary="Upload a recording of a session (raw body, streamed to <data>/site/recordings)")
async def put_recording(request: Request, lsid: Lsid, kind: Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")],
                        p: Caller, duration_seconds: Annotated[float, Query(ge=0)] = 0.0,
                        started_at: Annotated[float | None, Query()] = None) -> dict:
    site = _ingest(request, p)
    if kind not in H.RECORDING_KINDS:
        raise Invalid(f"kind: one of {', '.join(H.RECORDING_KINDS)}", field="kind")
    site.history.session(lsid)  # 404 before reading the body
    sha, size = await site.recordings.put_async(request.stream(), None, "recording")
    rec = site.history.add_recording(lsid, kind, sha, size, started_at, duration_seconds)
    site.audit.record(p.name, "history.recording.add", lsid, client_ip(request), {"sha256": sha, "kind": kind})
    return rec
