"""Deployed clients in the JSON API (CL-01, CL-02): installer deployments
(``/clients/deployments``), the jump clients and jumpoints with their live
state (online, last seen), revocation, and the pin of the certificate this
listener presents, which deployments carry as the clients' trust anchor.
The actions are ``tether.clients.admin``'s, which the /login page calls too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from tether.clients import admin
from tether.core import netaddr
from tether.clients.admin import Kind, NewDeployment
from tether.appliance.settings import Networking
from tether.clients.trust import pin_of_pem
from tether.core.shapes import of_table
from tether.site import client_tables as C
from tether.site import config_tables as T

from .auth import Principal, client_ip
from .bodies import reply
from .site_deps import Caller, site_of

router = APIRouter()
DEFAULT_HOSTNAME = Networking.model_fields["hostname"].default  # "tether.local": not configured

# the answers, as tether.clients.admin builds them from the site's tables
_DEPLOYMENT = ("id", "kind", "target", "trust", "created_by", "created_at", "expires_at", "used_at", "used_by")
Deployment = of_table(C.client_deployments, "Deployment", only=_DEPLOYMENT)
JumpClientState = of_table(T.jump_clients, "JumpClientState", only=(
    "name", "hostname", "os", "group_name", "public_ip", "last_seen_at"), extra=(("online", bool),))
JumpointState = of_table(T.jumpoints, "JumpointState", only=("name", "hostname", "enabled"),
                         extra=(("online", bool),))
Identity = of_table(C.client_identities, "Identity", only=(
    "id", "kind", "name", "created_at", "revoked_at", "revoked_by"))


class Connected(BaseModel):
    representatives: int
    jump_clients: int
    jumpoints: int


class ClientsOverview(BaseModel):
    """Jump clients and jumpoints with their live state, the identities, and the pin clients trust."""
    pin: str
    connected: Connected
    refused_busy: int
    jump_clients: list[JumpClientState]  # type: ignore[valid-type]
    jumpoints: list[JumpointState]  # type: ignore[valid-type]
    identities: list[Identity]  # type: ignore[valid-type]


class NewDeploymentAnswer(Deployment):  # type: ignore[misc, valid-type]
    """A new deployment: its one-time token (shown only now), the site the command names, the command."""
    token: str
    site: str
    site_source: str
    site_note: str
    command: str


class Revoked(BaseModel):
    kind: str
    name: str
    revoked_identities: int


def presented_pin(request: Request) -> str:
    """The pin of the certificate the listener this request came through presents."""
    appliance = request.app.state.appliance
    server = request.scope.get("server") or (None, None)
    for lst in appliance.listeners:
        if lst.port == server[1]:
            row = appliance.certs.get(lst.cert_id) if lst.cert_id is not None else appliance.certs.builtin()
            return pin_of_pem(row["cert_pem"])
    return pin_of_pem(appliance.certs.builtin()["cert_pem"])


def overview(request: Request, p: Principal) -> dict:
    return admin.overview(site_of(request), request.app.state.appliance.clients, p, presented_pin(request))


def install_site(request: Request) -> dict:
    """What an install command names as the site: the appliance's configured host name (/appliance >
    Networking > Hostname), on the port this request came in on, so that clients find the site by name
    after a move, a restore onto new hardware or a failover (CL-03); the address in the browser only while
    no host name is configured (a bare machine name, as ``tether init`` sets it, or the fallback
    tether.local: not a name clients resolve), and the answer says so and what to configure."""
    hostname = request.app.state.appliance.hostname()
    port = request.url.port
    configured = bool(hostname) and "." in hostname and hostname != DEFAULT_HOSTNAME  # a name clients resolve
    host = hostname if configured else (request.url.hostname or "SITE")
    site_arg = netaddr.host_port(host, port) if port and port != 443 else netaddr.url_host(host)
    if configured:
        note = (f"The command names the site by its host name {hostname} (/appliance > Networking > Hostname), "
                "not by an address: clients find the site again after it moves, as long as that name resolves "
                "to the appliance serving it.")
    else:
        note = (f"No host name is configured (/appliance > Networking > Hostname is {hostname or 'empty'}, "
                "not a fully qualified name clients resolve), "
                f"so the command names the address you are using ({site_arg}), which ties the client to that "
                "address. Set the host name clients resolve to this appliance (and its DNS record) first, then "
                "create the deployment again.")
    return {"site": site_arg, "site_source": "hostname" if configured else "address", "site_note": note}


def create_deployment(request: Request, p: Principal, body: NewDeployment) -> dict:
    """The deployment, with the install command naming the site as ``install_site`` says."""
    dep = admin.create_deployment(site_of(request), p, client_ip(request), body, presented_pin(request))
    dep.update(install_site(request))
    program = "tether-jump" if body.kind == "jump" else "tether-jumpoint"
    dep["command"] = f"{program} install --site {dep['site']} --token {dep['token']}"
    return dep


def revoke(request: Request, p: Principal, kind: str, name: str) -> dict:
    return admin.revoke(site_of(request), request.app.state.appliance.clients, p, client_ip(request), kind, name)


@router.get("/clients", summary="Jump clients and jumpoints with their live state, identities, and the pin",
            **reply(ClientsOverview))
def get_clients(request: Request, p: Caller) -> dict:
    return overview(request, p)


@router.get("/clients/deployments", summary="Installer deployments (tokens are shown only when created)",
            **reply(list[Deployment]))
def list_deployments(request: Request, p: Caller) -> list[dict]:
    return admin.deployments(site_of(request), p)


@router.post("/clients/deployments", status_code=201,
             summary="Create a one-time installer token for a jump client or a jumpoint",
             **reply(NewDeploymentAnswer, 201))
def post_deployment(request: Request, body: NewDeployment, p: Caller) -> dict:
    return create_deployment(request, p, body)


@router.delete("/clients/deployments/{dep_id}", status_code=204, summary="Withdraw an unused deployment")
def delete_deployment(request: Request, dep_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], p: Caller) -> None:
    admin.withdraw_deployment(site_of(request), p, client_ip(request), dep_id)


@router.post("/clients/{kind}/{name}/revoke", summary="Revoke a client's identity and disconnect it", **reply(Revoked))
def post_revoke(request: Request, kind: Kind, name: Annotated[str, Path(max_length=64)], p: Caller) -> dict:
    return revoke(request, p, kind, name)
