"""Logged history in the JSON API (SITE-03): filtered, paginated listings
(``/reporting/<kind>``, newest first or in the order written for pullers), what a
reporting client checks first (``/reporting/info``), a session with its events and recordings,
recording downloads (Range requests, SHA-256 header), the outbound-event deliveries, the change log; and the
ingest endpoints integrations and the client gateway use to record sessions
(``/command/sessions...``, permission ``command``). History reads and
session recording are the site's actions (``tether.site.actions.history``),
the same the /login pages and the client hub call."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import FileResponse

from tether import __version__
from tether.core.validate import Id, Natural
from tether.site import changelog
from tether.site.events import Delivery
from tether.site import history as H
from tether.site import permissions as P
from tether.site.actions import history

from .auth import client_ip
from . import bodies
from .bodies import body_of, reply
from .site_deps import Caller, send, site_of

router = APIRouter()
Lsid = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the session's id (lsid)")]


_PAGE_DOC = ("Filtered by time range [since, until), user and type. `order=newest` (the default) pages newest "
             "first for people browsing; `order=oldest` walks the records in the order they were written: keep "
             "the last `next_cursor` and come back later to get every record written since exactly once, even "
             "while records are being written between pages (the end is an empty page, whose `next_cursor` "
             "is the one you sent). Needs `reporting`.")
_SESSION_EXAMPLE = {"items": [{"id": 41, "lsid": "8f14e45fceea167a5a36dedd4bea2543", "kind": "support", "rep": "ann",
                               "team": "Tier 1", "customer_name": "Dana Novak", "customer_host": "pc17.example",
                               "jump_client": None, "started_at": 1767225600.0, "ended_at": 1767227400.0,
                               "end_reason": "rep_closed"}],
                    "next_cursor": "YWZ0ZXI6NDE="}


def _list_route(slug: str, k: H.HistoryKind) -> None:
    extra = ""
    if k.user_col:
        extra += f" `user` matches `{k.user_col}`."
    if k.type_col:
        extra += f" `type` matches `{k.type_col}`."
    if k.client_cols:
        extra += f" `client` matches any of {', '.join(f'`{c}`' for c in k.client_cols)}."
    example = {"content": {"application/json": {"example": _SESSION_EXAMPLE}}} if slug == "sessions" else {}

    @router.get(f"/reporting/{slug}", summary=f"{k.title}: filtered, paginated by cursor",
                description=_PAGE_DOC + extra, name=f"history_{slug}", **reply(k.page, **example))
    def list_(request: Request, p: Caller,
              since: Annotated[str | None, Query(description="from (inclusive): YYYY-MM-DD, ISO 8601 or epoch",
                                                 examples=["2026-01-01"])] = None,
              until: Annotated[str | None, Query(description="until (exclusive)", examples=["2026-02-01"])] = None,
              user: Annotated[str | None, Query(max_length=64, description="the representative (or user)")] = None,
              type: Annotated[str | None, Query(max_length=64, description="the kind (sessions: support, jump, "
                                                "shell, tunnel, show_my_screen)")] = None,
              client: Annotated[str | None, Query(max_length=253, description="sessions: the jump client, "
                                                  "customer name or customer host")] = None,
              order: Annotated[Literal["newest", "oldest"], Query(description="newest first, or in the order "
                                                                  "written (for pullers)")] = "newest",
              limit: Annotated[int, Query(ge=1, le=H.MAX_PAGE)] = 50,
              cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict:
        return history.list_history(site_of(request), p, slug, since=since, until=until, user=user, type=type,
                                    client=client, limit=limit, cursor=cursor, order=order)


for _slug, _k in H.KINDS.items():
    _list_route(_slug, _k)


@router.get("/reporting/info", summary="What a reporting client checks first: versions and the kinds recorded",
            **reply(H.ReportingInfo, content={"application/json": {"example": {
                "software_version": "1.2.1", "reporting_api": H.REPORTING_API,
                "site": {"name": "demo", "edition": "remote-support", "version": "1.2.1"},
                "kinds": list(H.KINDS), "recording_kinds": list(H.RECORDING_KINDS)}}}))
def get_info(request: Request, p: Caller) -> dict:
    return history.reporting_info(site_of(request), p, __version__)


@router.get("/reporting/sessions/{lsid}", summary="One session record with its events and recordings",
            **reply(H.SessionRecord))
def get_session(request: Request, lsid: Lsid, p: Caller) -> dict:
    return history.session(site_of(request), p, lsid)


_RECORDING_TYPES = {"application/octet-stream": bodies.BINARY, "application/x-asciicast": bodies.BINARY}
_RANGE_HEADERS = {
    "X-Content-SHA256": {"description": "SHA-256 (hex) of the whole recording, whatever range was asked",
                         "schema": {"type": "string"}},
    "Repr-Digest": {"description": "the same digest as RFC 9530 `sha-256=:<base64>:`", "schema": {"type": "string"}},
    "Accept-Ranges": {"description": "`bytes`", "schema": {"type": "string"}},
}


@router.get("/reporting/recordings/{rec_id}/content", summary="Download a recording (Range requests resume)",
            description="The recording's bytes as uploaded (command shells: asciicast v2). Send `Range: bytes=N-` "
                        "to resume a broken download from byte N (206 with `Content-Range`); a range past the "
                        "end answers 416 with `Content-Range: bytes */SIZE`. `If-Range` takes the `ETag`. Check "
                        "the assembled file against `X-Content-SHA256`. Needs `reporting`; 410 when the "
                        "recording's bytes are not on this appliance (recordings are not in site backups).",
            response_class=FileResponse,
            responses={200: {"description": "the whole recording", "headers": _RANGE_HEADERS,
                             "content": _RECORDING_TYPES},
                       206: {"description": "the range asked for (example: `Range: bytes=1048576-`)",
                             "headers": {**_RANGE_HEADERS, "Content-Range": {
                                 "description": "example: `bytes 1048576-5242879/5242880`",
                                 "schema": {"type": "string"}}},
                             "content": _RECORDING_TYPES},
                       410: {"description": "the index names a recording whose bytes are not here"},
                       416: {"description": "the range starts past the end; `Content-Range: bytes */SIZE`"}})
def get_recording(request: Request, rec_id: Id, p: Caller) -> FileResponse:
    return send(history.recording_download(site_of(request), p, rec_id), request)


@router.get("/reporting/event-deliveries", summary="Outbound event deliveries (webhooks, e-mail), newest first",
            **reply(list[Delivery]))
def get_deliveries(request: Request, p: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    p.require(P.REPORTING)
    return site_of(request).events.deliveries(limit)


@router.get("/changes", summary="The site's change log after a sequence number (docs/formats/changelog.md)",
            **reply(changelog.Changes))
def get_changes(request: Request, p: Caller, after: Natural = 0,
                limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict:
    p.require(P.BACKUP)
    with site_of(request).engine.connect() as c:
        entries = changelog.entries_after(c, after, limit)
        last = changelog.last_seq(c)
    return {"format": changelog.FORMAT_VERSION, "last_seq": last, "entries": entries}


# --- ingest --------------------------------------------------------------------------------------
@router.post("/command/sessions", status_code=201, summary="Record the start of a support session",
             openapi_extra=body_of(H.SessionStart), **reply(H.SessionRecord, 201))
def post_session(request: Request, body: Annotated[dict[str, Any], Body()], p: Caller) -> dict:
    return history.start_session(site_of(request), p, client_ip(request), body)


@router.post("/command/sessions/{lsid}/events", status_code=201, summary="Add an event to a session record",
             openapi_extra=body_of(H.SessionEvent), **reply(H.SessionRecord, 201))
def post_session_event(request: Request, lsid: Lsid, body: Annotated[dict[str, Any], Body()], p: Caller) -> dict:
    return history.add_event(site_of(request), p, lsid, body)


@router.post("/command/sessions/{lsid}/end", summary="Record the end of a session", **reply(H.SessionRecord))
def post_session_end(request: Request, lsid: Lsid, p: Caller,
                     body: Annotated[dict[str, Any] | None, Body()] = None) -> dict:
    return history.end_session(site_of(request), p, client_ip(request), lsid, (body or {}).get("reason", "ended"))


@router.put("/command/sessions/{lsid}/recordings/{kind}", status_code=201,
            summary="Upload a recording of a session (raw body, streamed to the recordings store: disk or bucket)",
            **reply(H.Recording, 201))
async def put_recording(request: Request, lsid: Lsid, kind: Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")],
                        p: Caller, duration_seconds: Annotated[float, Query(ge=0)] = 0.0,
                        started_at: Annotated[float | None, Query()] = None) -> dict:
    site = site_of(request)
    history.check_recording(site, p, lsid, kind)  # 403, 422, 404 before reading the body
    sha, size = await site.recordings.put_async(request.stream(), None, "recording")
    return history.add_recording(site, p, client_ip(request), lsid, kind, sha, size, started_at, duration_seconds)
