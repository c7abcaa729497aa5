"""Logged history as callers read and record it (SITE-03, SEC-06): the
site's audit log, history listings, one session with its events and
recordings, recording downloads; and recording sessions: start, events,
end, recordings.

Reading needs ``reporting``; recording through the API needs ``command``.
``begin_session`` is the one place a session starts (history record, its
first events, audit entry), whoever starts it: ``start_session`` for the
API after its ``command`` check, and the client hub (``clients.hub``) when a
representative opens a shell or tunnel, after the hub checked the
representative's group-policy permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from tether.core.errors import Invalid

from .. import history as H
from .. import permissions as P
from ..blobs import Download, download_of
from ..permissions import Actor

if TYPE_CHECKING:
    from ..site import Site


# --- reading -------------------------------------------------------------------------------------
def audit_log(site: Site, actor: Actor, limit: int = 100, offset: int = 0) -> list[dict]:
    """The site's audit log, newest first."""
    P.require(actor.granted, P.REPORTING)
    return site.audit.list(min(max(limit, 1), 1000), max(offset, 0))


def history_kind(site: Site, actor: Actor, slug: str) -> H.HistoryKind:
    P.require(actor.granted, P.REPORTING)
    return H.kind(slug, site.edition)


def list_history(site: Site, actor: Actor, slug: str, **filters) -> dict:
    """A page of one kind of history (filters: since, until, user, type, client, limit, cursor, order;
    ``History.list``)."""
    return site.history.list(history_kind(site, actor, slug), **filters)


def session(site: Site, actor: Actor, lsid: str) -> dict:
    """One session record with its events and recordings."""
    P.require(actor.granted, P.REPORTING)
    return site.history.session(lsid)


def recording_download(site: Site, actor: Actor, rec_id: int) -> Download:
    """A recording as stored, named and typed by ``history.recording_file``. Recordings never travel in
    backups, so after a restore the index can name one whose bytes are not here (410)."""
    P.require(actor.granted, P.REPORTING)
    rec = site.history.recording(rec_id)
    filename, media_type = H.recording_file(rec)
    return download_of(site.recordings, rec["sha256"], filename, media_type,
                       f"the content of recording {rec_id} is not on this appliance (recordings are not in "
                       "site backups)", "recordings stay on the appliance that made them")


def reporting_info(site: Site, actor: Actor, software_version: str) -> dict:
    """What a reporting client checks before it pulls: the appliance software, the site's package and the
    reporting API's contract version, and which kinds of history this site's edition records."""
    P.require(actor.granted, P.REPORTING)
    info = site.info()
    return {"software_version": software_version, "reporting_api": H.REPORTING_API,
            "site": {"name": info.name, "edition": info.edition, "version": info.version},
            "kinds": [slug for slug, k in H.KINDS.items() if k.edition in (None, site.edition)],
            "recording_kinds": list(H.RECORDING_KINDS)}


# --- recording sessions ------------------------------------------------------------------------------
def begin_session(site: Site, actor: str, source_ip: str | None, data: object,
                  events: Sequence[dict] = ()) -> dict:
    """Start a session record (``history.SessionStart``) with its first ``events`` (participants joining)
    and audit it. The caller has checked that ``actor`` may; the record is returned."""
    s = site.history.start_session(data)
    for event in events:
        s = site.history.add_event(s["lsid"], event)
    site.audit.record(actor, "history.session.start", s["lsid"], source_ip, {"rep": s["rep"], "kind": s["kind"]})
    return s


def start_session(site: Site, actor: Actor, source_ip: str | None, data: object) -> dict:
    """An integration records the start of a session it runs (``command``)."""
    P.require(actor.granted, P.COMMAND)
    return begin_session(site, actor.name, source_ip, data)


def add_event(site: Site, actor: Actor, lsid: str, data: object) -> dict:
    P.require(actor.granted, P.COMMAND)
    return site.history.add_event(lsid, data)


def end_session(site: Site, actor: Actor, source_ip: str | None, lsid: str, reason: str = "ended") -> dict:
    P.require(actor.granted, P.COMMAND)
    s = site.history.end_session(lsid, reason, actor.name)
    site.audit.record(actor.name, "history.session.end", lsid, source_ip)
    return s


def check_recording(site: Site, actor: Actor, lsid: str, kind: str) -> None:
    """Before an upload's bytes are read: the permission, the kind, and that the session exists (404)."""
    P.require(actor.granted, P.COMMAND)
    if kind not in H.RECORDING_KINDS:
        raise Invalid(f"kind: one of {', '.join(H.RECORDING_KINDS)}", field="kind")
    site.history.session(lsid)


def add_recording(site: Site, actor: Actor, source_ip: str | None, lsid: str, kind: str, sha: str, size: int,
                  started_at: float | None, duration_seconds: float) -> dict:
    """Index a recording whose bytes were streamed into ``site.recordings``."""
    P.require(actor.granted, P.COMMAND)
    rec = site.history.add_recording(lsid, kind, sha, size, started_at, duration_seconds)
    site.audit.record(actor.name, "history.recording.add", lsid, source_ip, {"sha256": sha, "kind": kind})
    return rec
