"""``/api/failover/...``: the failover pair's JSON API (the twin of
/login > Management > Failover and of ``tether failover``): status,
establish, break, sync now. Each calls tether.failover.service, which
checks the permission."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from .auth import Principal, appliance_of, client_ip

router = APIRouter()


async def _caller(request: Request) -> Principal:
    from .site_api import principal

    return await principal(request)


Caller = Annotated[Principal, Depends(_caller)]


class EstablishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peer: str
    self_address: str | None = None  # where the peer reaches this appliance; default: the address asked


class BreakBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = False


def own_address(request: Request, given: str | None) -> str:
    if given:
        return given
    host, port = request.scope.get("server") or ("127.0.0.1", 443)
    return f"{host}:{port}"


@router.get("/failover/status", summary="Failover status: role, generation, peer, sync position and lag (FO-02)")
def get_status(request: Request, p: Caller) -> dict:
    return appliance_of(request).failover.status(p)


@router.post("/failover/establish", summary="Establish failover with the appliance at `peer` (this one: primary)")
def post_establish(request: Request, body: EstablishBody, p: Caller) -> dict:
    return appliance_of(request).failover.establish(p, body.peer, own_address(request, body.self_address),
                                                    client_ip(request))


@router.post("/failover/break", summary="Break the failover pair (both appliances become standalone)")
def post_break(request: Request, body: BreakBody, p: Caller) -> dict:
    return appliance_of(request).failover.break_pair(p, client_ip(request), force=body.force)


@router.post("/failover/sync-now", summary="Sync now (on the backup): reconnect and recheck every blob")
def post_sync_now(request: Request, p: Caller) -> dict:
    return appliance_of(request).failover.sync_now(p, client_ip(request))
