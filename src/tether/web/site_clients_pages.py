"""The /login "Jump clients" page (CL-01, CL-02) at ``/login/clients``: the
pin of the certificate this listener presents (what deployed clients trust),
the connected counts, the jump clients and jumpoints with their live state
(online, last seen) and identity state, the identities themselves, the
installer deployments (used / expired / valid) with a withdraw button for
unused ones, forms to create a jump client or jumpoint deployment (the token
and install command are shown once, on the answer page) and a Revoke button
per client (a POST with CSRF, behind a confirmation text).

Every action calls the same function as its /api twin
(``tether.clients.admin``, through ``site_clients_api`` where the request's
listener matters): same permission checks (``config:read`` to look,
``config:write`` to change), same audit records; errors are shown on the
page as on the other /login pages."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request

from tether.clients import admin
from tether.clients.directory import DEFAULT_TTL, MAX_TTL
from tether.core.errors import Invalid, TetherError
from tether.core.validate import parse_model
from tether.site import permissions as P
from tether.site import resources as R

from . import forms
from .auth import client_ip
from .login_pages import FACE, _page
from .pages import render
from .site_deps import site_of
from .site_clients_api import NewDeployment, create_deployment, overview, revoke

router = APIRouter()
TITLE = "Jump clients"
TEMPLATE = "site/clients.html"
KIND_LABEL = {"jump": "jump client", "jumpoint": "jumpoint"}
DAY = 86400
MAX_DAYS = MAX_TTL // DAY
DEFAULT_DAYS = DEFAULT_TTL // DAY


# --- readable times ------------------------------------------------------------------------------
def _span(seconds: float) -> str:
    s = int(abs(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 2 * DAY:
        return f"{round(s / 3600)} h"
    return f"{round(s / DAY)} days"


def _when(ts: float | None, now: float) -> dict | None:
    """``{"text": "3 min ago", "utc": "2025-06-01 10:22:05 UTC", "iso": ...}`` for a timestamp."""
    if ts is None:
        return None
    d = now - ts
    text = "just now" if abs(d) < 5 else (f"{_span(d)} ago" if d > 0 else f"in {_span(d)}")
    return {"text": text, "utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)),
            "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))}


# --- the page ------------------------------------------------------------------------------------
def _identity_states(identities: list[dict]) -> dict[tuple[str, str], str]:
    """(kind, name) -> "active" when one identity is live, else "revoked"."""
    out: dict[tuple[str, str], str] = {}
    for i in identities:
        key = (i["kind"], i["name"])
        if i["revoked_at"] is None:
            out[key] = "active"
        else:
            out.setdefault(key, "revoked")
    return out


def _show(request: Request, p, *, status: int = 200, error: str | None = None, notice: str | None = None,
          created: dict | None = None, values: dict | None = None):
    ov = overview(request, p)  # config:read, as GET /api/clients
    deployments = admin.deployments(site_of(request), p)
    now = time.time()
    states = _identity_states(ov["identities"])
    names_by_id = {i["id"]: i["name"] for i in ov["identities"]}
    jump_clients = [{**j, "identity": states.get(("jump", j["name"]), "none"),
                     "seen": _when(j["last_seen_at"], now)} for j in ov["jump_clients"]]
    jumpoints = [{**j, "identity": states.get(("jumpoint", j["name"]), "none")} for j in ov["jumpoints"]]
    identities = [{**i, "created": _when(i["created_at"], now), "revoked": _when(i["revoked_at"], now)}
                  for i in ov["identities"]]
    deps = []
    for d in deployments:
        state = "used" if d["used_at"] is not None else "expired" if d["expires_at"] < now else "valid"
        deps.append({**d, "state": state, "created": _when(d["created_at"], now),
                     "expires": _when(d["expires_at"], now), "used": _when(d["used_at"], now),
                     "used_name": names_by_id.get(d["used_by"] or "", d["used_by"])})
    groups = [g["name"] for g in site_of(request).config.list(R.KINDS["jump-client-groups"])]
    if created is not None:
        created = {**created, "expires": _when(created["expires_at"], now)}
    return render(request, FACE, TEMPLATE, TITLE, status=status, csrf_token=p.csrf_token, error=error,
                  notice=notice, pin=ov["pin"], connected=ov["connected"], jump_clients=jump_clients,
                  jumpoints=jumpoints, identities=identities, deployments=deps, groups=groups,
                  jumpoint_names=[j["name"] for j in ov["jumpoints"]], created=created,
                  can_write=P.CONFIG_WRITE in p.granted, values=values or {}, kind_label=KIND_LABEL,
                  max_days=MAX_DAYS, default_days=DEFAULT_DAYS)


def _message(exc: TetherError) -> str:
    return exc.message + (f" — {exc.hint}" if exc.hint else "")


@router.get("/login/clients")
async def clients_page(request: Request):
    async def h(p):
        return _show(request, p)
    return await _page(request, h)


def _new_deployment(form) -> NewDeployment:
    days = forms.integer(form, "validity_days")
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"validity_days: between 1 and {MAX_DAYS} days", field="validity_days")
    return parse_model(NewDeployment, {
        "kind": str(form.get("kind") or ""),
        "target": str(form.get("target") or "").strip() or None,
        "ttl_seconds": days * DAY,
        "trust": str(form.get("trust") or "pin"),
        "pin": str(form.get("pin") or "").strip() or None,
    })


@router.post("/login/clients/deployments")
async def deployment_create(request: Request):
    async def h(p):
        p.require(P.CONFIG_WRITE)
        form = await request.form()
        values = {k: str(form.get(k) or "") for k in ("kind", "target", "validity_days", "trust", "pin")}
        try:
            created = create_deployment(request, p, _new_deployment(form))  # as POST /api/clients/deployments
        except TetherError as exc:
            if exc.status in (401, 403):
                raise
            return _show(request, p, status=exc.status, error=_message(exc), values=values)
        return _show(request, p, created=created)
    return await _page(request, h)


@router.post("/login/clients/deployments/{dep_id}/withdraw")
async def deployment_withdraw(request: Request, dep_id: str):
    async def h(p):
        try:  # as DELETE /api/clients/deployments/<id> (used ones refused)
            admin.withdraw_deployment(site_of(request), p, client_ip(request), dep_id)
        except TetherError as exc:
            if exc.status in (401, 403):
                raise
            return _show(request, p, status=exc.status, error=_message(exc))
        return _show(request, p, notice=f"Deployment {dep_id} withdrawn: its token no longer works.")
    return await _page(request, h)


@router.post("/login/clients/{kind}/{name}/revoke")
async def client_revoke(request: Request, kind: str, name: str):
    async def h(p):
        try:
            done = revoke(request, p, kind, name)  # as POST /api/clients/<kind>/<name>/revoke
        except TetherError as exc:
            if exc.status in (401, 403):
                raise
            return _show(request, p, status=exc.status, error=_message(exc))
        hub = request.app.state.appliance.clients
        for _ in range(40):  # the hub drops the connection on its own loop: show the page after it did
            if not hub.online(kind, name):
                break
            await asyncio.sleep(0.05)
        n = done["revoked_identities"]
        return _show(request, p, notice=f"Revoked {KIND_LABEL[kind]} {name} ({n} identit{'y' if n == 1 else 'ies'}): "
                                        "it was disconnected and cannot reconnect; deploy it again with a new "
                                        "token to bring it back.")
    return await _page(request, h)
