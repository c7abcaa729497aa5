"""Logged history in the JSON API (SITE-03): filtered, paginated listings
(``/reporting/<kind>``), a session with its events and recordings,
recording downloads, the outbound-event deliveries, the change log; and the
ingest endpoints integrations and the client gateway use to record sessions
(``/command/sessions...``, permission ``command``). History reads and
session recording are the site's actions (``tether.site.actions.history``),
the same the /login pages and the client hub call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import FileResponse

from tether.core.validate import Id, Natural
from tether.site import changelog
from tether.site import history as H
from tether.site import permissions as P
from tether.site.actions import history

from .auth import client_ip
from .bodies import body_of
from .site_deps import Caller, send, site_of

router = APIRouter()
Lsid = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the session's id (lsid)")]


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
        return history.list_history(site_of(request), p, slug, since=since, until=until, user=user, type=type,
                                    limit=limit, cursor=cursor)


for _slug, _k in H.KINDS.items():
    _list_route(_slug, _k)


@router.get("/reporting/sessions/{lsid}", summary="One session record with its events and recordings")
def get_session(request: Request, lsid: Lsid, p: Caller) -> dict:
    return history.session(site_of(request), p, lsid)


@router.get("/reporting/recordings/{rec_id}/content", summary="Download a recording", response_class=FileResponse)
def get_recording(request: Request, rec_id: Id, p: Caller) -> FileResponse:
    return send(history.recording_download(site_of(request), p, rec_id))


@router.get("/reporting/event-deliveries", summary="Outbound event deliveries (webhooks, e-mail), newest first")
def get_deliveries(request: Request, p: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    p.require(P.REPORTING)
    return site_of(request).events.deliveries(limit)


@router.get("/changes", summary="The site's change log after a sequence number (docs/formats/changelog.md)")
def get_changes(request: Request, p: Caller, after: Natural = 0,
                limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict:
    p.require(P.BACKUP)
    with site_of(request).engine.connect() as c:
        entries = changelog.entries_after(c, after, limit)
        last = changelog.last_seq(c)
    return {"format": changelog.FORMAT_VERSION, "last_seq": last, "entries": entries}


# --- ingest --------------------------------------------------------------------------------------
@router.post("/command/sessions", status_code=201, summary="Record the start of a support session",
             openapi_extra=body_of(H.SessionStart))
def post_session(request: Request, body: Annotated[dict[str, Any], Body()], p: Caller) -> dict:
    return history.start_session(site_of(request), p, client_ip(request), body)


@router.post("/command/sessions/{lsid}/events", status_code=201, summary="Add an event to a session record",
             openapi_extra=body_of(H.SessionEvent))
def post_session_event(request: Request, lsid: Lsid, body: Annotated[dict[str, Any], Body()], p: Caller) -> dict:
    return history.add_event(site_of(request), p, lsid, body)


@router.post("/command/sessions/{lsid}/end", summary="Record the end of a session")
def post_session_end(request: Request, lsid: Lsid, p: Caller,
                     body: Annotated[dict[str, Any] | None, Body()] = None) -> dict:
    return history.end_session(site_of(request), p, client_ip(request), lsid, (body or {}).get("reason", "ended"))


@router.put("/command/sessions/{lsid}/recordings/{kind}", status_code=201,
            summary="Upload a recording of a session (raw body, streamed to the recordings store: disk or bucket)")
async def put_recording(request: Request, lsid: Lsid, kind: Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")],
                        p: Caller, duration_seconds: Annotated[float, Query(ge=0)] = 0.0,
                        started_at: Annotated[float | None, Query()] = None) -> dict:
    site = site_of(request)
    history.check_recording(site, p, lsid, kind)  # 403, 422, 404 before reading the body
    sha, size = await site.recordings.put_async(request.stream(), None, "recording")
    return history.add_recording(site, p, client_ip(request), lsid, kind, sha, size, started_at, duration_seconds)
