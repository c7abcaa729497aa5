"""/login Management > Failover: status of the pair, establish and break,
"Become primary" / "Become backup", "Sync now", the pre-shared key and this
appliance's own failover settings. Each form calls the same function of
tether.failover.service as /api/failover and ``tether failover``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tether.core.errors import TetherError
from tether.site.actions import config as config_actions

from . import forms
from .auth import appliance_of, client_ip
from .failover_api import own_address
from .login_pages import FACE, _page
from .pages import render

router = APIRouter()


def _render(request, p, status=200, **extra):
    service = appliance_of(request).failover
    return render(request, FACE, "site/failover.html", "Management › Failover", status=status,
                  csrf_token=p.csrf_token, s=service.status(p), **extra)


@router.get("/login/failover")
async def failover_page(request: Request):
    async def h(p):
        return _render(request, p)
    return await _page(request, h)


def _action(name: str):
    async def endpoint(request: Request):
        async def h(p):
            form = await request.form()
            service = appliance_of(request).failover
            ip = client_ip(request)
            try:
                if name == "establish":
                    service.establish(p, str(form.get("peer") or ""),
                                      own_address(request, str(form.get("self_address") or "") or None), ip)
                    notice = "Failover established: this appliance is the primary."
                elif name == "break":
                    service.break_pair(p, ip, force=forms.checkbox(form, "force"))
                    notice = "Failover broken."
                elif name == "become-primary":
                    service.become_primary(p, ip, data_sync_first=forms.checkbox(form, "data_sync_first"),
                                           force=forms.checkbox(form, "force"))
                    notice = "This appliance is now the primary."
                elif name == "become-backup":
                    service.become_backup(p, ip, data_sync_first=forms.checkbox(form, "data_sync_first"),
                                          force=forms.checkbox(form, "force"))
                    notice = "This appliance is now the backup."
                elif name == "sync-now":
                    service.sync_now(p, ip)
                    notice = "Sync started."
                else:  # psk
                    config_actions.put_section(appliance_of(request).site, p, ip, "inter-appliance-psk",
                                               {"psk": str(form.get("psk") or "")})
                    notice = "Pre-shared key set."
            except TetherError as exc:
                return _render(request, p, status=exc.status, error=exc.message + (f" — {exc.hint}" if exc.hint else ""))
            return _render(request, p, notice=notice)
        return await _page(request, h)
    return endpoint


for _name in ("establish", "break", "become-primary", "become-backup", "sync-now", "psk"):
    router.add_api_route(f"/login/failover/{_name}", _action(_name), methods=["POST"])
