"""Incident attachments (logs, screenshots) stored as files under
``DATA/attachments/N/`` with their size and SHA-256 in the database.

Uploads are checked (count, size, name) before anything is stored; a file is
written aside and renamed into place inside the caller's transaction, so a
refused request leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tether.core.errors import Invalid, NotFound

from . import tables
from .context import one

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}"  # the column holds 128
_MEDIA_TYPE = re.compile(f"{_TOKEN}/{_TOKEN}")


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    content_type: str | None = None


def safe_name(name: str) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    base = _UNSAFE.sub("_", base).strip("._") or "attachment"
    return base[:120]


def media_type(value: str | None) -> str | None:
    """``type/subtype`` of a declared content type, lower-case and without parameters; None when
    there is none or it is no media type (the file is then served as application/octet-stream)."""
    v = (value or "").split(";", 1)[0].strip().lower()
    return v if _MEDIA_TYPE.fullmatch(v) else None


def check(desk, uploads: list[Upload], field: str = "attachments") -> None:
    cfg = desk.config
    if len(uploads) > cfg.max_attachments:
        raise Invalid(f"at most {cfg.max_attachments} attachments per message", field=field)
    for i, up in enumerate(uploads):
        if len(up.data) > cfg.max_attachment_bytes:
            raise Invalid(f"attachment {up.filename!r} is {len(up.data)} bytes; the limit is "
                          f"{cfg.max_attachment_bytes} bytes", field=f"{field}.{i}",
                          hint="compress the file or attach an excerpt")
        if not up.data:
            raise Invalid(f"attachment {up.filename!r} is empty", field=f"{field}.{i}")


def store(desk, conn, incident: int, event_id: int | None, uploads: list[Upload]) -> list[dict]:
    folder = desk.attachments_dir / str(incident)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for up in uploads:
        name = safe_name(up.filename)
        aid = conn.execute(tables.attachments.insert().values(
            incident=incident, event=event_id, filename=name, content_type=media_type(up.content_type),
            size=len(up.data), sha256=hashlib.sha256(up.data).hexdigest(), path="")).inserted_primary_key[0]
        rel = Path("attachments") / str(incident) / f"{aid}-{name}"
        target = desk.config.data_dir / rel
        tmp = target.with_suffix(target.suffix + ".part")
        with open(tmp, "wb") as f:
            f.write(up.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        conn.execute(tables.attachments.update().where(tables.attachments.c.id == aid).values(path=str(rel)))
        out.append({"id": aid, "filename": name, "size": len(up.data)})
    return out


def list_for(conn, incident: int) -> list[dict]:
    a = tables.attachments
    rows = conn.execute(sa.select(a.c.id, a.c.event, a.c.filename, a.c.content_type, a.c.size, a.c.sha256)
                        .where(a.c.incident == incident).order_by(a.c.id)).mappings()
    return [dict(r) for r in rows]


def read(desk, incident: int, attachment_id: int) -> tuple[dict, bytes]:
    a = tables.attachments
    with desk.read() as c:
        row = one(c, sa.select(a).where(a.c.id == attachment_id, a.c.incident == incident))
    if row is None:
        raise NotFound(f"incident {incident} has no attachment {attachment_id}")
    return row, (desk.config.data_dir / row["path"]).read_bytes()
