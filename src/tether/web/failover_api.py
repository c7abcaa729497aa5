"""``/api/failover/...``: the failover pair's JSON API (the twin of
/login > Management > Failover and of ``tether failover``): status,
establish, break, sync now. Each calls tether.failover.service, which
checks the permission."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from tether.core.validate import Bool
from tether.failover.orphans import OrphanFile, OrphanFileSummary
from tether.failover.service import FailoverStatus, PairBroken
from tether.site.changelog import Reapplied

from .auth import appliance_of, client_ip
from .bodies import reply
from .site_deps import Caller

router = APIRouter()



class EstablishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peer: str
    self_address: str | None = None  # where the peer reaches this appliance; default: the address asked


class BreakBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: Bool = False


def own_address(request: Request, given: str | None) -> str:
    if given:
        return given
    host, port = request.scope.get("server") or ("127.0.0.1", 443)
    return f"{host}:{port}"


@router.get("/failover/status", summary="Failover status: role, generation, peer, sync position and lag (FO-02)",
            **reply(FailoverStatus))
def get_status(request: Request, p: Caller) -> dict:
    return appliance_of(request).failover.status(p)


@router.post("/failover/establish", summary="Establish failover with the appliance at `peer` (this one: primary)",
            **reply(FailoverStatus))
def post_establish(request: Request, body: EstablishBody, p: Caller) -> dict:
    return appliance_of(request).failover.establish(p, body.peer, own_address(request, body.self_address),
                                                    client_ip(request))


@router.post("/failover/break", summary="Break the failover pair (both appliances become standalone)",
            **reply(PairBroken))
def post_break(request: Request, body: BreakBody, p: Caller) -> dict:
    return appliance_of(request).failover.break_pair(p, client_ip(request), force=body.force)


@router.post("/failover/sync-now", summary="Sync now (on the backup): reconnect and recheck every blob",
            **reply(FailoverStatus))
def post_sync_now(request: Request, p: Caller) -> dict:
    return appliance_of(request).failover.sync_now(p, client_ip(request))


class RoleChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_sync_first: Bool = False
    force: Bool = False


class SetRoleBody(RoleChangeBody):
    role: str


class OrphansBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[dict]


@router.post("/failover/become-primary", summary="Make this backup the primary (FO-06): planned, or alone with force",
            **reply(FailoverStatus))
def post_become_primary(request: Request, body: RoleChangeBody, p: Caller) -> dict:
    return appliance_of(request).failover.become_primary(p, client_ip(request), data_sync_first=body.data_sync_first,
                                                         force=body.force)


@router.post("/failover/become-backup", summary="Make this primary the backup; the peer takes over (FO-06)",
            **reply(FailoverStatus))
def post_become_backup(request: Request, body: RoleChangeBody, p: Caller) -> dict:
    return appliance_of(request).failover.become_backup(p, client_ip(request), data_sync_first=body.data_sync_first,
                                                        force=body.force)


@router.post("/command/set_failover_role", summary="IC-04: role primary|backup, data_sync_first, force",
            **reply(FailoverStatus))
def post_set_failover_role(request: Request, body: SetRoleBody, p: Caller) -> dict:
    return appliance_of(request).failover.set_failover_role(p, client_ip(request), body.role,
                                                            data_sync_first=body.data_sync_first, force=body.force)


@router.get("/failover/orphans", summary="Orphan files: changes this appliance took that the new primary lacks (FO-08)",
            **reply(list[OrphanFileSummary]))
def get_orphans(request: Request, p: Caller) -> list[dict]:
    return appliance_of(request).failover.orphan_files(p)


@router.get("/failover/orphans/{name}", summary="One orphan file (docs/formats/orphans.md)",
            **reply(OrphanFile))
def get_orphan(request: Request, name: str, p: Caller) -> dict:
    return appliance_of(request).failover.orphan_file(p, name)


@router.post("/failover/orphans/apply", summary="Re-apply orphaned changes here (the new primary) as new changes",
            **reply(Reapplied))
def post_apply_orphans(request: Request, body: OrphansBody, p: Caller) -> dict:
    return appliance_of(request).failover.apply_orphans(p, body.entries, client_ip(request))
