"""Deployed clients as site administrators manage them (CL-01, CL-02): the
overview with each client's live state, installer deployments (create,
list, withdraw) and revocation, one function each for the /login "Jump
clients" page and its /api twin. ``config:read`` looks, ``config:write``
changes (checked first: 403, nothing written); each change is audited.

What depends on the HTTP request stays with the caller: the pin of the
certificate the caller's listener presents (a deployment's default trust
anchor) and the install command line naming the address it came in on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tether.core.errors import NotFound
from tether.site import permissions as P
from tether.site.permissions import Actor

from .directory import DEFAULT_TTL, KINDS, MAX_TTL, Directory

if TYPE_CHECKING:
    from tether.site.site import Site

Kind = Literal["jump", "jumpoint"]


class Hub(Protocol):
    """What these actions need from the client hub (``hub.ClientHub``)."""

    refused_busy: int

    def counts(self) -> dict: ...
    def online(self, kind: str, name: str) -> bool: ...
    def revoked(self, kind: str, name: str) -> None: ...


class NewDeployment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    target: Annotated[str, Field(max_length=64, description="jump client group (jump) or jumpoint name")] | None = None
    ttl_seconds: Annotated[int, Field(ge=60, le=MAX_TTL)] = DEFAULT_TTL
    trust: Literal["pin", "root"] = "pin"
    pin: Annotated[str, Field(max_length=64, description="sha256/<base64url>; default: this listener's certificate")] | None = None


def overview(site: Site, hub: Hub, actor: Actor, pin: str) -> dict:
    """Jump clients and jumpoints with their live state, the identities, and ``pin`` (what clients trust)."""
    P.require(actor.granted, P.CONFIG_READ)
    d = Directory(site.engine)
    return {
        "pin": pin,
        "connected": hub.counts(),
        "refused_busy": hub.refused_busy,  # hellos told to retry later by the connection rate (CL-04)
        "jump_clients": [{**j, "online": hub.online("jump", j["name"])} for j in d.jump_clients()],
        "jumpoints": [{"name": j["name"], "hostname": j["hostname"], "enabled": j["enabled"],
                       "online": hub.online("jumpoint", j["name"])} for j in d.jumpoints()],
        "identities": d.identities(),
    }


def deployments(site: Site, actor: Actor) -> list[dict]:
    """Installer deployments; a token is shown only when created."""
    P.require(actor.granted, P.CONFIG_READ)
    return Directory(site.engine).deployments()


def create_deployment(site: Site, actor: Actor, source_ip: str | None, body: NewDeployment,
                      presented_pin: str) -> dict:
    """A one-time installer token; trust ``pin`` defaults to ``presented_pin``, ``root`` pins nothing."""
    P.require(actor.granted, P.CONFIG_WRITE)
    pin = None if body.trust == "root" else (body.pin or presented_pin)
    dep = Directory(site.engine).create_deployment(body.kind, body.target, pin, actor.name, body.ttl_seconds)
    site.audit.record(actor.name, "client.deployment.create", dep["id"], source_ip,
                      {"kind": dep["kind"], "target": dep["target"]})
    return dep


def withdraw_deployment(site: Site, actor: Actor, source_ip: str | None, dep_id: str) -> None:
    """An unused deployment only (a used one stays as the record of its installation: 409)."""
    P.require(actor.granted, P.CONFIG_WRITE)
    Directory(site.engine).delete_deployment(dep_id)
    site.audit.record(actor.name, "client.deployment.delete", dep_id, source_ip)


def revoke(site: Site, hub: Hub, actor: Actor, source_ip: str | None, kind: str, name: str) -> dict:
    """Revoke every identity of a jump client or jumpoint and disconnect it; it cannot reconnect."""
    P.require(actor.granted, P.CONFIG_WRITE)
    if kind not in KINDS:
        raise NotFound(f"no client kind {kind!r}; one of {', '.join(KINDS)}")
    n = Directory(site.engine).revoke(kind, name, actor.name)
    hub.revoked(kind, name)
    site.audit.record(actor.name, "client.revoke", name, source_ip, {"kind": kind, "identities": n})
    return {"kind": kind, "name": name, "revoked_identities": n}
