"""The Remote Support file store as callers use it (SITE-02): list, index an
upload, delete, download. ``config:read`` reads it, ``config:write``
changes it; a Privileged Remote Access site has none (404).

An upload's bytes are streamed by the face (a raw request body or a form
part) into ``store(...).blobs`` after ``store(..., write=True)`` and the
declared size were checked; ``add_file`` then indexes them. A download
whose bytes are not on this appliance is ``Gone`` (410), never a broken
response: the index row outlives its content when a restored backup left
the file out (BK-02). Every name, whichever face brings it, passes the one
rule of ``filestore.check_name`` (a face checks it before it streams an
upload, so that a refused name stores nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.core.errors import Invalid, NotFound

from .. import permissions as P
from ..blobs import Download, download_of
from ..filestore import FileStore, check_name
from ..permissions import Actor
from ..resources import RS, check_edition

if TYPE_CHECKING:
    from ..site import Site


def store(site: Site, actor: Actor, *, write: bool = False) -> FileStore:
    P.require(actor.granted, P.CONFIG_WRITE if write else P.CONFIG_READ)
    check_edition(RS, site.edition, "The file store and its files")
    return site.files


def list_files(site: Site, actor: Actor, limit: int = 1000, offset: int = 0) -> list[dict]:
    return store(site, actor).list(limit, offset)


def add_file(site: Site, actor: Actor, source_ip: str | None, name: str, sha: str, size: int,
             content_type: str, description: str) -> dict:
    """Index bytes already written to the store's blobs under ``name`` (replacing a file of that name)."""
    row = store(site, actor, write=True).add(name, sha, size, content_type, description, actor.name)
    site.audit.record(actor.name, "file.upload", name, source_ip, {"sha256": sha, "size": size})
    return row


def delete_file(site: Site, actor: Actor, source_ip: str | None, name: str) -> dict:
    """Refused (409) while a presentation uses the file."""
    files = store(site, actor, write=True)
    gone = files.delete(_existing(files, name))
    site.audit.record(actor.name, "file.delete", name, source_ip)
    return gone


def download(site: Site, actor: Actor, name: str) -> Download:
    files = store(site, actor)
    row = files.get(_existing(files, name))
    return download_of(files.blobs, row["sha256"], name, row["content_type"],
                       f"the content of {name!r} is not on this appliance (it was left out of the backup the "
                       "site was restored from)", "upload the file again")


def _existing(files: FileStore, name: str) -> str:
    """``name`` if the rule allows it, or if a file of that name is in the store all the same (one an
    older release let in): whatever is listed can be fetched and deleted; anything else is refused
    by the rule (422), not looked up."""
    try:
        return check_name(name)
    except Invalid:
        if isinstance(name, str):
            try:
                files.get(name)
                return name
            except NotFound:
                pass
        raise
