"""Deployed clients in the JSON API (CL-01, CL-02): installer deployments
(``/clients/deployments``), the jump clients and jumpoints with their live
state (online, last seen), revocation, and the pin of the certificate this
listener presents, which deployments carry as the clients' trust anchor."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from tether.clients.directory import DEFAULT_TTL, MAX_TTL, Directory
from tether.clients.trust import pin_of_pem
from tether.site import permissions as P

from .auth import client_ip
from .site_api import Caller, site_of

router = APIRouter()
Kind = Literal["jump", "jumpoint"]


def presented_pin(request: Request) -> str:
    """The pin of the certificate the listener this request came through presents."""
    appliance = request.app.state.appliance
    server = request.scope.get("server") or (None, None)
    for lst in appliance.listeners:
        if lst.port == server[1]:
            row = appliance.certs.get(lst.cert_id) if lst.cert_id is not None else appliance.certs.builtin()
            return pin_of_pem(row["cert_pem"])
    return pin_of_pem(appliance.certs.builtin()["cert_pem"])


class NewDeployment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    target: Annotated[str, Field(max_length=64, description="jump client group (jump) or jumpoint name")] | None = None
    ttl_seconds: Annotated[int, Field(ge=60, le=MAX_TTL)] = DEFAULT_TTL
    trust: Literal["pin", "root"] = "pin"
    pin: Annotated[str, Field(max_length=64, description="sha256/<base64url>; default: this listener's certificate")] | None = None


def clients_overview(request: Request) -> dict:
    appliance = request.app.state.appliance
    d = Directory(site_of(request).engine)
    hub = appliance.clients
    return {
        "pin": presented_pin(request),
        "connected": hub.counts(),
        "refused_busy": hub.refused_busy,  # hellos told to retry later by the connection rate (CL-04)
        "jump_clients": [{**j, "online": hub.online("jump", j["name"])} for j in d.jump_clients()],
        "jumpoints": [{"name": j["name"], "hostname": j["hostname"], "enabled": j["enabled"],
                       "online": hub.online("jumpoint", j["name"])} for j in d.jumpoints()],
        "identities": d.identities(),
    }


def create_deployment(request: Request, actor: str, body: NewDeployment) -> dict:
    pin = None if body.trust == "root" else (body.pin or presented_pin(request))
    site = site_of(request)
    dep = Directory(site.engine).create_deployment(body.kind, body.target, pin, actor, body.ttl_seconds)
    site.audit.record(actor, "client.deployment.create", dep["id"], client_ip(request),
                      {"kind": dep["kind"], "target": dep["target"]})
    host = request.url.hostname or "SITE"
    port = request.url.port
    site_arg = f"{host}:{port}" if port and port != 443 else host
    program = "tether-jump" if body.kind == "jump" else "tether-jumpoint"
    dep["command"] = f"{program} install --site {site_arg} --token {dep['token']}"
    return dep


def revoke(request: Request, actor: str, kind: str, name: str) -> dict:
    site = site_of(request)
    n = Directory(site.engine).revoke(kind, name, actor)
    request.app.state.appliance.clients.revoked(kind, name)
    site.audit.record(actor, "client.revoke", name, client_ip(request), {"kind": kind, "identities": n})
    return {"kind": kind, "name": name, "revoked_identities": n}


@router.get("/clients", summary="Jump clients and jumpoints with their live state, identities, and the pin")
def get_clients(request: Request, p: Caller) -> dict:
    p.require(P.CONFIG_READ)
    return clients_overview(request)


@router.get("/clients/deployments", summary="Installer deployments (tokens are shown only when created)")
def list_deployments(request: Request, p: Caller) -> list[dict]:
    p.require(P.CONFIG_READ)
    return Directory(site_of(request).engine).deployments()


@router.post("/clients/deployments", status_code=201,
             summary="Create a one-time installer token for a jump client or a jumpoint")
def post_deployment(request: Request, body: NewDeployment, p: Caller) -> dict:
    p.require(P.CONFIG_WRITE)
    return create_deployment(request, p.name, body)


@router.delete("/clients/deployments/{dep_id}", status_code=204, summary="Withdraw an unused deployment")
def delete_deployment(request: Request, dep_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], p: Caller) -> None:
    p.require(P.CONFIG_WRITE)
    site = site_of(request)
    Directory(site.engine).delete_deployment(dep_id)
    site.audit.record(p.name, "client.deployment.delete", dep_id, client_ip(request))


@router.post("/clients/{kind}/{name}/revoke", summary="Revoke a client's identity and disconnect it")
def post_revoke(request: Request, kind: Kind, name: Annotated[str, Path(max_length=64)], p: Caller) -> dict:
    p.require(P.CONFIG_WRITE)
    return revoke(request, p.name, kind, name)
