"""The site's JSON API (``/api``), OpenAPI at /api/openapi.json (SITE-06).

Callers authenticate with a bearer token: either an API account's token from
``POST /api/oauth/token`` (client credentials) or a site user's session token
from ``POST /api/session``. The routes parse, call the site's action (the
same function the /login HTML page calls, ``tether.site.actions``: it checks
the permission) and return its answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.security import HTTPBasic
from pydantic import BaseModel
from tether.clients.directory import Directory
from tether.core.errors import Invalid
from tether.core.validate import Bool, Int, Natural
from tether.core.audit import AuditEntry
from tether.failover.service import Health
from tether.runtime.appliance import SiteInformation
from tether.site.actions import accounts, config, history
from tether.site.api_accounts import ApiAccount, ApiAccountRef, IssuedToken, NewApiAccountSecret
from tether.site.config import SiteSettings
from tether.site.users import PublicUser

from . import backup_api, bodies, failover_api, monitoring_api, site_clients_api, site_data_api
from .auth import Principal, appliance_of, client_ip
from .bodies import Ok, reply
from .errors import ERROR_RESPONSES, install_json_handlers
from .site_deps import Caller, principal_pending, site_change_password, site_login, site_of

_basic = HTTPBasic(auto_error=False)


class LoginBody(BaseModel):
    username: str
    password: str  # with ``challenge``: the one-time code
    challenge: str | None = None  # the token of a 401 challenge_required answer


class PasswordBody(BaseModel):
    current_password: str
    new_password: str


class NewUser(BaseModel):
    username: str
    password: str
    display_name: str = ""
    is_admin: Bool = False
    permissions: list[str] = []


class SiteSession(BaseModel):
    """The answer of a site login: the bearer token and what the user may do."""
    token: str
    expires_at: float
    must_change_password: bool
    provider: str
    groups: list[str]
    group_policies: list[str]
    rep_permissions: list[str]


class Me(BaseModel):
    realm: str
    name: str
    permissions: list[str]


class SetPassword(BaseModel):
    password: str
    must_change_password: Bool = True


class NewApiAccount(BaseModel):
    name: str
    permissions: list[str]
    token_ttl: Int = 900


def create() -> FastAPI:
    api = FastAPI(title="Tether site API", version="1", openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  servers=[{"url": "/api"}], responses=ERROR_RESPONSES)
    install_json_handlers(api)
    bodies.install(api)

    @api.post("/oauth/token", summary="Exchange API client credentials for a bearer token",
              **reply(IssuedToken))
    def post_token(request: Request, grant_type: Annotated[str, Form()], client_id: Annotated[str, Form()],
                   client_secret: Annotated[str, Form()]) -> dict:
        if grant_type != "client_credentials":
            raise Invalid("grant_type must be client_credentials", field="grant_type")
        site = site_of(request)
        result = site.api_accounts.issue_token(client_id, client_secret, client_ip(request))
        site.audit.record(client_id, "api.token", "api", client_ip(request))
        return result

    @api.post("/session", summary="Log a site user in; returns a bearer session token",
              **reply(SiteSession))
    def post_session(request: Request, body: LoginBody) -> dict:
        login, token, s = site_login(request, body.username, body.password, body.challenge)
        d = Directory(site_of(request).engine)
        return {"token": token, "expires_at": s.expires_at, "must_change_password": login.user.must_change_password,
                "provider": login.provider, "groups": list(login.groups),
                "group_policies": d.group_policies(login.user.username, login.group_provider, login.groups),
                "rep_permissions": sorted(d.rep_permissions(login.user.username, login.group_provider,
                                                            login.groups))}

    @api.post("/session/password", summary="Change the logged-in user's password", **reply(Ok))
    def post_password(request: Request, body: PasswordBody,
                      p: Annotated[Principal, Depends(principal_pending)]) -> dict:
        site_change_password(request, p, body.current_password, body.new_password)
        return {"ok": True}

    @api.delete("/session", summary="Log out (end this session token)", **reply(Ok))
    def delete_session(request: Request, p: Annotated[Principal, Depends(principal_pending)]) -> dict:
        if p.realm == "site":
            site_of(request).sessions.delete(p.token)
        return {"ok": True}

    @api.get("/site/information", summary="Status > Information (SITE-05)", **reply(SiteInformation))
    def get_information(request: Request, _p: Caller) -> dict:
        return appliance_of(request).site_information()

    @api.get("/me", summary="The calling user or API account and its permissions", **reply(Me))
    def get_me(p: Caller) -> dict:
        return {"realm": p.realm, "name": p.name, "permissions": sorted(p.granted)}

    @api.get("/users", summary="List site users", **reply(list[PublicUser]))
    def get_users(request: Request, p: Caller) -> list[dict]:
        return [u.public() for u in accounts.list_users(site_of(request), p)]

    @api.post("/users", status_code=201, summary="Create a site user", **reply(PublicUser, 201))
    def post_user(request: Request, body: NewUser, p: Caller) -> dict:
        return accounts.create_user(site_of(request), p, client_ip(request), **body.model_dump())

    @api.put("/users/{username}/password", summary="Set (reset) a user's password", **reply(Ok))
    def put_user_password(request: Request, username: str, body: SetPassword, p: Caller) -> dict:
        accounts.reset_password(site_of(request), p, client_ip(request), username, body.password,
                                must_change=body.must_change_password)
        return {"ok": True}

    @api.get("/api-accounts", summary="List API accounts (secrets are never shown again)",
             **reply(list[ApiAccount]))
    def get_api_accounts(request: Request, p: Caller) -> list[dict]:
        return accounts.list_api_accounts(site_of(request), p)

    @api.post("/api-accounts", status_code=201, summary="Create an API account; the secret is shown once",
              **reply(NewApiAccountSecret, 201))
    def post_api_account(request: Request, body: NewApiAccount, p: Caller) -> dict:
        return accounts.create_api_account(site_of(request), p, client_ip(request), **body.model_dump())

    @api.delete("/api-accounts/{client_id}", summary="Delete an API account and revoke its tokens",
                **reply(ApiAccountRef))
    def del_api_account(request: Request, client_id: str, p: Caller) -> dict:
        return accounts.delete_api_account(site_of(request), p, client_ip(request), client_id)

    @api.get("/config/site", summary="Read the site settings", **reply(SiteSettings))
    def get_site_config(request: Request, p: Caller) -> dict:
        return config.site_settings(site_of(request), p)

    @api.put("/config/site", summary="Replace the site settings", openapi_extra=bodies.body_of(SiteSettings),
             **reply(SiteSettings))
    def put_site_config(request: Request, body: dict[str, Any], p: Caller) -> dict:
        return config.put_site_settings(site_of(request), p, client_ip(request), body)

    @api.get("/reporting/audit", summary="The site's audit log, newest first", **reply(list[AuditEntry]))
    def get_audit(request: Request, p: Caller, limit: Int = 100, offset: Natural = 0) -> list[dict]:
        return history.audit_log(site_of(request), p, limit, offset)

    @api.post("/command/check_health", summary="Health of this appliance (IC-04): id, version, role, last sync",
              **reply(Health))
    def check_health(request: Request, p: Caller) -> dict:
        return appliance_of(request).failover.check_health(p)

    api.include_router(backup_api.router)
    api.include_router(site_data_api.router)
    api.include_router(site_clients_api.router)
    api.include_router(failover_api.router)
    api.include_router(monitoring_api.site_router)
    return api
