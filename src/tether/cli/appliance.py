"""``tether`` commands for the /appliance face: status, site-package install,
admin password, settings and the audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import credentials
from .output import JsonOpt, emit, errors, fail, iso
from .remote import CaOpt, PasswordOpt, PinOpt, Remote, UrlOpt, UserOpt

AgreeOpt = Annotated[bool, typer.Option("--accept-agreement", help="Accept the /appliance login agreement")]

site_pkg = typer.Typer(help="Install site packages.", no_args_is_help=True)
settings_app = typer.Typer(help="/appliance settings (networking, security, monitoring).", no_args_is_help=True)


def admin_remote(url, cacert, pin, user, password, agree) -> Remote:
    return Remote.from_options(url, cacert, pin).appliance_login(user, password, agree)


def register(app: typer.Typer) -> None:
    app.add_typer(site_pkg, name="site-package")
    app.add_typer(settings_app, name="settings")

    @app.command("status")
    def status(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
               password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Status > Basics of a running appliance."""
        with errors():
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            emit(r.call("GET", "/appliance/api/status"), as_json)

    @app.command("password")
    def password_cmd(face: Annotated[str, typer.Option(help="appliance or site")] = "appliance",
                     new_password: Annotated[str | None, typer.Option(envvar="TETHER_NEW_PASSWORD",
                                                                      help="New password (or TETHER_NEW_PASSWORD)")] = None,
                     url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                     password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Change your own password on /appliance or /login (required at first login)."""
        if face not in ("appliance", "site"):
            fail("--face must be appliance or site", 2)
        with errors():
            r = Remote.from_options(url, cacert, pin_cert)
            password = credentials.login_password(face, password)
            if password is None:
                password = typer.prompt("Current password", hide_input=True)
            if new_password is None:
                new_password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
            body = {"current_password": password, "new_password": new_password}
            credentials.forget(face, r.url, user)  # the session kept for the old password goes with it
            if face == "appliance":
                r.appliance_login(user, password, accept_agreement)
                r.call("POST", "/appliance/api/password", json=body)
            else:
                r.site_login(user, password, None)
                r.call("POST", "/api/session/password", json=body)
            credentials.forget(face, r.url, user)
        emit({"ok": True, "face": face, "user": user}, as_json, f"Password of {user} on {face} changed.")

    @app.command("audit")
    def audit(face: Annotated[str, typer.Option(help="appliance or site")] = "appliance",
              limit: int = 50, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
              user: UserOpt = "admin", password: PasswordOpt = None,
              token: Annotated[str | None, typer.Option("--token", envvar="TETHER_TOKEN")] = None,
              accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """The audit log of /appliance or of the site, newest first."""
        with errors():
            r = Remote.from_options(url, cacert, pin_cert)
            if face == "appliance":
                rows = admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call(
                    "GET", f"/appliance/api/audit?limit={limit}")
            else:
                rows = r.site_login(user, password, token).call("GET", f"/api/reporting/audit?limit={limit}")
        emit(rows, as_json, "\n".join(f"{iso(e['at'])} {e['actor']} {e['action']} {e['target'] or ''} "
                                      f"{e['source_ip'] or ''}".rstrip() for e in rows) or "(no entries)")

    @site_pkg.command("install")
    def install(file: Path, data: Annotated[Path | None, typer.Option(
                    "--data", help="Install offline into this (stopped) appliance's data directory")] = None,
                url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Install (or update to) a signed site package, offline (--data) or on a running appliance (--url)."""
        with errors():
            if data is not None:
                from tether.core.paths import DataDir
                from tether.runtime import open_offline

                with open_offline(DataDir.at(data)) as a:
                    result = a.install_site_package(file.read_bytes(), "cli", "cli")
            else:
                r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
                with file.open("rb") as f:
                    result = r.call("POST", "/appliance/api/site-package", files={"file": (file.name, f)})
        emit(result, as_json, result.get("message") or f"Site {result['site_name']} {result['version']} "
                              f"({result['edition']}): {result['action']} done")

    for section in ("networking", "security", "storage", "monitoring"):
        _settings_commands(section)


def _settings_commands(section: str) -> None:
    @settings_app.command(f"get-{section}")
    def get(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
            password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Print the settings as JSON (with or without --json: the document set-SECTION takes)."""
        with errors():
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            emit(r.call("GET", f"/appliance/api/{section}"), True)

    @settings_app.command(f"set-{section}")
    def put(file: Annotated[Path, typer.Argument(help="JSON document (as printed by get), '-' for stdin")],
            url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
            password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Replace the settings with a JSON document; invalid settings are refused and nothing is saved."""
        with errors():
            try:
                body = json.loads(typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text())
            except ValueError as exc:
                fail(f"{file}: not JSON ({exc})", 2)
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            emit(r.call("PUT", f"/appliance/api/{section}", json=body), as_json, f"{section} saved")
