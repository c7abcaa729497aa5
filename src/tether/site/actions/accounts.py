"""Site users and API accounts as an administrator manages them (SITE-01,
SITE-06): list, create, edit, reset the password of and delete users; list,
create and delete API accounts. Every function needs ``users:manage``.

Ending sessions follows the change: a reset password or a disabled or
deleted user logs that user out everywhere; a deleted API account's tokens
go with it (``ApiAccounts.delete``). Logging in and changing one's own
password are not here: they act for oneself, not on the site."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .. import permissions as P
from ..permissions import Actor
from ..users import User

if TYPE_CHECKING:
    from ..site import Site


def require(actor: Actor) -> None:
    """``users:manage``, which every function here checks first (a page checks it before reading its form)."""
    P.require(actor.granted, P.USERS_MANAGE)


# --- users -----------------------------------------------------------------------------------
def list_users(site: Site, actor: Actor) -> list[User]:
    require(actor)
    return site.users.list()


def user_detail(site: Site, actor: Actor, username: str) -> dict:
    """A user with team membership and last login."""
    require(actor)
    return site.user_admin.detail(username)


def create_user(site: Site, actor: Actor, source_ip: str | None, *, username: str, password: str,
                display_name: str = "", is_admin: bool = False, permissions: Sequence[str] = ()) -> dict:
    """A new user, who must change the initial password at first login."""
    require(actor)
    user = site.users.create(username, password, display_name=display_name, is_admin=is_admin,
                             permissions=list(permissions))
    site.audit.record(actor.name, "user.create", username, source_ip,
                      {"is_admin": is_admin, "permissions": sorted(user.granted)})
    return user.public()


def reset_password(site: Site, actor: Actor, source_ip: str | None, username: str, password: str, *,
                   must_change: bool = True) -> None:
    require(actor)
    site.users.set_password(username, password, must_change=must_change)
    site.sessions.delete_user(username)
    site.audit.record(actor.name, "user.password.reset", username, source_ip)


def update_user(site: Site, actor: Actor, source_ip: str | None, username: str, body: object) -> dict:
    """Edit name, e-mail, enabled, permissions, teams (``users.UserUpdate``); not one's own admin rights."""
    require(actor)
    user = site.user_admin.update(username, body, actor.name)
    if not user["enabled"]:
        site.sessions.delete_user(username)
    site.audit.record(actor.name, "user.update", username, source_ip,
                      {"enabled": user["enabled"], "is_admin": user["is_admin"], "teams": user["teams"],
                       "permissions": user["permissions"]})
    return user


def delete_user(site: Site, actor: Actor, source_ip: str | None, username: str) -> dict:
    """Not oneself, and not a user still referenced (group policies, presentations)."""
    require(actor)
    gone = site.user_admin.delete(username, actor.name)
    site.sessions.delete_user(username)
    site.audit.record(actor.name, "user.delete", username, source_ip)
    return gone


# --- API accounts ------------------------------------------------------------------------------
def list_api_accounts(site: Site, actor: Actor) -> list[dict]:
    """Secrets are never shown again."""
    require(actor)
    return site.api_accounts.list()


def create_api_account(site: Site, actor: Actor, source_ip: str | None, *, name: str,
                       permissions: Sequence[str], token_ttl: int = 900) -> dict:
    """A new account; the answer holds its client secret, the only time it is shown."""
    require(actor)
    acct = site.api_accounts.create(name, list(permissions), actor.name, token_ttl)
    site.audit.record(actor.name, "api_account.create", name, source_ip,
                      {"client_id": acct["client_id"], "permissions": acct["permissions"]})
    return acct


def delete_api_account(site: Site, actor: Actor, source_ip: str | None, client_id: str) -> dict:
    """The account and every token it was issued."""
    require(actor)
    gone = site.api_accounts.delete(client_id)
    site.audit.record(actor.name, "api_account.delete", gone["name"], source_ip, {"client_id": client_id})
    return gone
