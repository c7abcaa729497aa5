"""``tether`` commands for the site (/login and /api): site information,
users and API accounts. They log in as a site user (--user) or use an API
token (--token)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .output import JsonOpt, emit, errors, fail
from .remote import CaOpt, PasswordOpt, PinOpt, Remote, TokenOpt, UrlOpt

SiteUserOpt = Annotated[str | None, typer.Option("--user", envvar="TETHER_USER", help="Site user name")]

site_app = typer.Typer(help="The installed site.", no_args_is_help=True)
users_app = typer.Typer(help="Site users.", no_args_is_help=True)
api_app = typer.Typer(help="API accounts and tokens.", no_args_is_help=True)


def _remote(url, cacert, pin, user, password, token) -> Remote:
    return Remote.from_options(url, cacert, pin).site_login(user, password, token)


def register(app: typer.Typer) -> None:
    app.add_typer(site_app, name="site")
    app.add_typer(users_app, name="users")
    app.add_typer(api_app, name="api")

    @site_app.command("info")
    def info(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
             password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """Status > Information: version, site name, edition, role, connected clients."""
        with errors():
            emit(_remote(url, cacert, pin_cert, user, password, token).call("GET", "/api/site/information"), as_json)

    @site_app.command("move-db")
    def move_db(to: Annotated[str, typer.Option(
                    "--to", envvar="TETHER_SITE_DB_URL",
                    help="sqlite, or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE (an empty database)")],
                data: Annotated[Path, typer.Option("--data", help="The stopped appliance's data directory")],
                dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; change nothing")] = False,
                as_json: JsonOpt = False):
        """Move the site's database from SQLite to PostgreSQL or back (OPS-03), on a stopped appliance:
        copied whole and switched in one step (the old or the moved site after a crash)."""
        from tether.core.paths import DataDir
        from tether.runtime import open_offline

        with errors():
            with open_offline(DataDir.at(data)) as a:
                res = a.move_site_database(to, dry_run=dry_run, actor="cli", source_ip="cli")
        dest = res["to"]
        where = "SQLite" if dest["backend"] == "sqlite" else \
            f"PostgreSQL {dest['host']}:{dest['port']}/{dest['database']} schema {dest['schema']}"
        total = sum(res["rows"].values())
        text = (f"{'Would move' if dry_run else 'Moved'} the site to {where}: {total} rows in "
                f"{len(res['rows'])} tables, {res['blobs']['files']} files and {res['blobs']['recordings']} "
                "recordings stay in the data directory")
        emit(res, as_json, text)

    @users_app.command("list")
    def users_list(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                   password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """List site users."""
        with errors():
            rows = _remote(url, cacert, pin_cert, user, password, token).call("GET", "/api/users")
        emit(rows, as_json, "\n".join(f"{u['username']}\t{'admin' if u['is_admin'] else ','.join(u['permissions'])}"
                                      for u in rows))

    @users_app.command("create")
    def users_create(username: str,
                     initial_password: Annotated[str, typer.Option(envvar="TETHER_INITIAL_PASSWORD",
                                                                   help="Initial password; the user must change it")],
                     admin: Annotated[bool, typer.Option("--admin", help="Grant every permission")] = False,
                     permission: Annotated[list[str] | None, typer.Option("--permission", help="Repeatable")] = None,
                     display_name: str = "", url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                     user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                     as_json: JsonOpt = False):
        """Create a site user."""
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call("POST", "/api/users", json={
                "username": username, "password": initial_password, "display_name": display_name,
                "is_admin": admin, "permissions": permission or []})
        emit(res, as_json, f"User {res['username']} created")

    @users_app.command("set-password")
    def users_set_password(username: str,
                           new_password: Annotated[str, typer.Option(envvar="TETHER_NEW_PASSWORD")],
                           url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                           user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                           as_json: JsonOpt = False):
        """Reset a user's password (the user must change it at next login)."""
        with errors():
            _remote(url, cacert, pin_cert, user, password, token).call(
                "PUT", f"/api/users/{username}/password", json={"password": new_password})
        emit({"ok": True, "username": username}, as_json, f"Password of {username} reset")

    def _edit(username: str, changes: dict, remote: Remote) -> dict:
        """A user's current document with ``changes`` applied, sent back (PUT /api/users/NAME)."""
        from tether.site.users import UserUpdate

        cur = remote.call("GET", f"/api/users/{username}")
        body = {k: cur.get(k) for k in UserUpdate.model_fields if k in cur}
        body.update({k: v for k, v in changes.items() if v is not None})
        if body.get("is_admin"):
            body["permissions"] = []
        return remote.call("PUT", f"/api/users/{username}", json=body)

    @users_app.command("show")
    def users_show(username: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                   user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                   as_json: JsonOpt = False):
        """A user's details: permissions, teams, enabled, last login."""
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call("GET", f"/api/users/{username}")
        emit(res, as_json)

    @users_app.command("edit")
    def users_edit(username: str,
                   display_name: Annotated[str | None, typer.Option("--display-name")] = None,
                   email: Annotated[str | None, typer.Option("--email")] = None,
                   admin: Annotated[bool | None, typer.Option("--admin/--no-admin", help="Every permission")] = None,
                   permission: Annotated[list[str] | None, typer.Option(
                       "--permission", help="Repeatable; replaces the user's permissions")] = None,
                   team: Annotated[list[str] | None, typer.Option("--team", help="Repeatable; replaces the teams")]
                   = None,
                   enabled: Annotated[bool | None, typer.Option("--enable/--disable",
                                                                help="Allow or stop the user's logins")] = None,
                   url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                   password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """Edit a user (only what is given changes): name, e-mail, administrator, permissions, teams, enabled."""
        with errors():
            res = _edit(username, {"display_name": display_name, "email": email, "is_admin": admin,
                                   "permissions": permission, "teams": team, "enabled": enabled},
                        _remote(url, cacert, pin_cert, user, password, token))
        emit(res, as_json, f"User {username} saved ({'enabled' if res['enabled'] else 'disabled'})")

    def _toggle(verb: str, flag: bool, doc: str) -> None:
        def toggle(username: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                   user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                   as_json: JsonOpt = False):
            with errors():
                res = _edit(username, {"enabled": flag}, _remote(url, cacert, pin_cert, user, password, token))
            emit(res, as_json, f"User {username} {verb}d")

        toggle.__doc__ = doc
        users_app.command(verb)(toggle)

    _toggle("disable", False, "Stop a user's logins (the account and its history stay; its sessions end).")
    _toggle("enable", True, "Let a disabled user log in again.")

    @users_app.command("delete")
    def users_delete(username: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                     user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                     as_json: JsonOpt = False):
        """Delete a user (not yourself, not one still referenced); their sessions end."""
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call("DELETE", f"/api/users/{username}")
        emit(res, as_json, f"User {username} deleted")

    @api_app.command("create-account")
    def create_account(name: str, permission: Annotated[list[str], typer.Option("--permission", help="Repeatable")],
                       token_ttl: int = 900, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                       user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                       as_json: JsonOpt = False):
        """Create an API account; prints its client id and secret (shown once)."""
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call("POST", "/api/api-accounts", json={
                "name": name, "permissions": permission, "token_ttl": token_ttl})
        emit(res, as_json, f"client_id     {res['client_id']}\nclient_secret {res['client_secret']}\n"
                           f"permissions   {' '.join(res['permissions'])}")

    @api_app.command("list-accounts")
    def list_accounts(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                      password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """List API accounts."""
        with errors():
            rows = _remote(url, cacert, pin_cert, user, password, token).call("GET", "/api/api-accounts")
        emit(rows, as_json, "\n".join(f"{a['client_id']}\t{a['name']}\t{','.join(a['permissions'])}" for a in rows))

    @api_app.command("delete-account")
    def delete_account(client_id: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                       user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                       as_json: JsonOpt = False):
        """Delete an API account and revoke its tokens."""
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call("DELETE", f"/api/api-accounts/{client_id}")
        emit(res, as_json, f"API account {res['name']} deleted")

    @api_app.command("token")
    def get_token(client_id: Annotated[str, typer.Option(envvar="TETHER_CLIENT_ID")],
                  client_secret: Annotated[str, typer.Option(envvar="TETHER_CLIENT_SECRET")],
                  url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, as_json: JsonOpt = False):
        """Exchange API client credentials for a bearer token."""
        with errors():
            if not client_secret:
                fail("give the client secret (TETHER_CLIENT_SECRET)", 2)
            res = Remote.from_options(url, cacert, pin_cert).call("POST", "/api/oauth/token", data={
                "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret})
        emit(res, as_json, res["access_token"])
