"""The Remote Support file store (SITE-02): named files of any size whose
bytes live content-addressed under ``<data>/site/files`` (or in the site's
bucket: ``site.storage``) and whose index
(name, sha256, size, type, uploader) lives in ``store_files``; and the
client branding logo (a small image kept in the database). A blob is
removed when the last index row naming it goes."""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata

import sqlalchemy as sa

from pydantic import BaseModel

from tether.core.errors import Conflict, Invalid, NotFound, TetherError
from tether.core.shapes import of_table

from . import sections
from .blobs import BlobStore, TooLarge
from .config_tables import branding_assets, presentations, store_files

StoredFile = of_table(store_files, "StoredFile")  # a file of the store as listed, read and indexed


class Logo(BaseModel):
    """The branding logo as ``put_logo`` stored it."""
    content_type: str
    sha256: str
    size: int

log = logging.getLogger(__name__)
NAME_MAX = 255
# control, format (zero-width, bidi overrides), surrogate, private-use, unassigned, line/paragraph separators
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
NAME_RULE = f"name: 1-{NAME_MAX} characters, no slashes or control characters, no spaces at either end"
LOGO_MAX = 1 << 20
_IMAGES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
           b"GIF89a": "image/gif"}


def check_name(name: str) -> str:
    """THE file-store name rule, for every face (the page, the API, ``tether files``): any Unicode
    text of 1-255 characters but slashes, backslashes, control and invisible format characters,
    whitespace other than inner spaces, and the names ``.`` and ``..``."""
    if (not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX or name in (".", "..") or "/" in name
            or "\\" in name or name != name.strip(" ")
            or any(unicodedata.category(ch) in _REFUSED or (ch.isspace() and ch != " ") for ch in name)):
        raise Invalid(NAME_RULE, field="name")
    return name


class FileStore:
    def __init__(self, engine: sa.Engine, blobs: BlobStore):
        self.engine = engine
        self.blobs = blobs

    def max_upload_bytes(self) -> int:
        return sections.get_model(self.engine, sections.SECTIONS["file-store"]).max_upload_bytes

    def check_size(self, declared: int | None) -> int:
        limit = self.max_upload_bytes()
        if declared is not None and declared > limit:
            raise TooLarge(f"file: {declared} bytes is larger than the limit of {limit} bytes", field="file",
                           hint="raise file-store max_upload_bytes or upload a smaller file")
        return limit

    def add(self, name: str, sha: str, size: int, content_type: str, description: str, actor: str) -> dict:
        """Index a blob already written by ``blobs.put_*`` under ``name`` (replacing an older file of that name)."""
        check_name(name)
        if len(description) > 512:
            raise Invalid("description: at most 512 characters", field="description")
        values = dict(sha256=sha, size=size, content_type=(content_type or "application/octet-stream")[:128],
                      description=description, uploaded_by=actor, uploaded_at=time.time())
        with self.engine.begin() as c:
            old = c.execute(sa.select(store_files.c.sha256).where(store_files.c.name == name)).first()
            if old:
                c.execute(store_files.update().where(store_files.c.name == name).values(**values))
            else:
                c.execute(store_files.insert().values(name=name, **values))
        if old and old[0] != sha:
            self._collect(old[0])
        return self.get(name)

    def get(self, name: str) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(store_files).where(store_files.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no file named {name!r} in the file store")
        return dict(row)

    def list(self, limit: int = 1000, offset: int = 0) -> list[dict]:
        with self.engine.connect() as c:
            q = sa.select(store_files).order_by(store_files.c.name).limit(limit).offset(offset)
            return [dict(r) for r in c.execute(q).mappings()]

    def delete(self, name: str) -> dict:
        with self.engine.begin() as c:
            row = c.execute(sa.select(store_files.c.sha256).where(store_files.c.name == name)).first()
            if row is None:
                raise NotFound(f"no file named {name!r} in the file store")
            used = c.execute(sa.select(presentations.c.name).where(presentations.c.file == name)).first()
            if used:
                raise Conflict(f"file {name!r} is used by presentation {used[0]!r}")
            c.execute(store_files.delete().where(store_files.c.name == name))
        self._collect(row[0])
        return {"name": name, "deleted": True}

    def _collect(self, sha: str) -> None:
        with self.engine.connect() as c:
            if c.execute(sa.select(store_files.c.name).where(store_files.c.sha256 == sha).limit(1)).first() is None:
                try:
                    self.blobs.remove(sha)
                except TetherError as exc:  # the bucket is down: the change stands, the object is left over
                    log.warning("file-store object %s could not be removed: %s", sha, exc.message)

    # --- branding logo --------------------------------------------------------------------
    def put_logo(self, data: bytes) -> dict:
        if len(data) > LOGO_MAX:
            raise TooLarge(f"logo: at most {LOGO_MAX} bytes", field="logo")
        ctype = next((t for magic, t in _IMAGES.items() if data.startswith(magic)), None)
        if ctype is None:
            raise Invalid("logo: send a PNG, JPEG or GIF image", field="logo")
        values = dict(content_type=ctype, sha256=hashlib.sha256(data).hexdigest(), data=data, updated_at=time.time())
        with self.engine.begin() as c:
            if c.execute(sa.select(branding_assets.c.name).where(branding_assets.c.name == "logo")).first():
                c.execute(branding_assets.update().where(branding_assets.c.name == "logo").values(**values))
            else:
                c.execute(branding_assets.insert().values(name="logo", **values))
        return {"content_type": ctype, "sha256": values["sha256"], "size": len(data)}

    def logo(self) -> tuple[bytes, str]:
        with self.engine.connect() as c:
            row = c.execute(sa.select(branding_assets).where(branding_assets.c.name == "logo")).mappings().first()
        if row is None:
            raise NotFound("no logo has been uploaded")
        return bytes(row["data"]), row["content_type"]
