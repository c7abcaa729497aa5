"""Backup API (IC-01, BK-01, BK-06, DR-03) under /api: download a site
backup (the password travels in the request body, never in the URL),
verify an uploaded backup, and restore one. Uploads are streamed to disk in
the data directory, never held in memory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from tether.backup import protection
from tether.backup.service import Restored, Verified
from tether.core.errors import Invalid
from tether.core.fsutil import open_private
from tether.core.validate import Bool
from tether.site import permissions as P

from .auth import Principal, appliance_of, client_ip
from .bodies import file_reply, reply
from .site_deps import Caller

router = APIRouter()
CHUNK = 1 << 20



class BackupRequest(BaseModel):
    password: str | None = None
    no_password: Bool = False  # an unprotected backup, asked for explicitly
    include_history: Bool = False


API_HINT = 'send "password", or "no_password": true for an unprotected backup'


def download_backup(request: Request, p: Principal, password: str | None, no_password: bool, include_history: bool,
                    hint: str | None = None) -> FileResponse:
    """Shared by the API and the /login Software page; the password by ``backup.protection``'s rule."""
    p.require(P.BACKUP)
    password = protection.backup_password(password, no_password=no_password, hint=hint)
    app = appliance_of(request)
    result = app.backups.take(password=password, include_history=include_history, actor=p.name,
                              source_ip=client_ip(request), out_dir=app.data.backups_dir / ".downloads",
                              actor_kind="api_account" if p.realm == "api" else "user")
    return FileResponse(result.path, media_type="application/octet-stream", filename=result.path.name,
                        background=BackgroundTask(os.unlink, result.path))


async def save_upload(request: Request, upload: UploadFile) -> Path:
    """Stream an uploaded backup into the data directory; the caller deletes it."""
    app = appliance_of(request)
    d = app.data.backups_dir / ".uploads"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"upload-{secrets.token_hex(8)}.nsb"
    n = 0
    with open_private(path) as f:
        while chunk := await upload.read(CHUNK):
            f.write(chunk)
            n += len(chunk)
    if n == 0:
        path.unlink()
        raise Invalid("upload the backup file (.nsb)", field="file")
    return path


def restore_upload(request: Request, p: Principal, path: Path, password: str | None, force: bool,
                   confirm_failover: bool = False) -> dict:
    p.require(P.BACKUP)
    p.require(P.CONFIG_WRITE)
    try:
        return appliance_of(request).backups.restore(path, password or None, force=force, actor=p.name,
                                                     source_ip=client_ip(request), confirm_failover=confirm_failover)
    finally:
        path.unlink(missing_ok=True)


@router.post("/backup", summary="Download a site backup (.nsb); the password goes in the body (or no_password: true)",
             response_class=FileResponse, **file_reply(description="The site backup (.nsb)"))
def post_backup(request: Request, body: BackupRequest, p: Caller):
    return download_backup(request, p, body.password, body.no_password, body.include_history, API_HINT)


@router.post("/backup/verify", summary="Verify an uploaded backup without restoring it (DR-03)",
             **reply(Verified))
async def post_verify(request: Request, p: Caller, file: UploadFile,
                      password: Annotated[str, Form()] = "") -> dict:
    p.require(P.BACKUP)
    path = await save_upload(request, file)
    try:
        return appliance_of(request).backups.verify(path, password or None)
    finally:
        path.unlink(missing_ok=True)


@router.post("/restore", summary="Restore the site from an uploaded backup (BK-06)", **reply(Restored))
async def post_restore(request: Request, p: Caller, file: UploadFile, password: Annotated[str, Form()] = "",
                       force: Annotated[bool, Form()] = False,
                       confirm_failover: Annotated[bool, Form()] = False) -> dict:
    p.require(P.BACKUP)
    p.require(P.CONFIG_WRITE)
    path = await save_upload(request, file)
    return restore_upload(request, p, path, password, force, confirm_failover)
