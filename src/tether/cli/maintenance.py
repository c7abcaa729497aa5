"""``tether settings export`` / ``settings import`` (the whole /appliance
configuration, APPL-04), ``tether factory-reset`` and ``tether shutdown``
(APPL-06) on a running appliance, through the same /appliance/api routes as
the Maintenance page. The destructive ones ask for the typed confirmation
unless ``--yes``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .appliance import AgreeOpt, admin_remote, settings_app
from .output import JsonOpt, emit, errors, fail, out_target
from .remote import CaOpt, PasswordOpt, PinOpt, UrlOpt, UserOpt

YesOpt = Annotated[bool, typer.Option("--yes", help="Do not ask for the confirmation (scripts)")]


def _confirm(phrase: str, what: str, yes: bool) -> str:
    if yes:
        return phrase
    typed = typer.prompt(f"{what}\nType '{phrase}' to confirm", default="", show_default=False)
    if typed.strip() != phrase:
        fail("not confirmed: nothing was done", 1)
    return phrase


def register(app: typer.Typer) -> None:
    @settings_app.command("export")
    def export_cmd(out: Annotated[str, typer.Option("--out", help="Directory (default file name; created if "
                                                    "missing) or .yaml file")] = ".",
                   url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                   password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Export the whole /appliance configuration as YAML (secrets left out; docs/formats/appliance-config.md)."""
        with errors():
            out_dir, out_file = out_target(out, ".yaml")
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            path = r.download("GET", "/appliance/api/config/export", out_file or out_dir)
        emit({"file": str(path), "size": path.stat().st_size}, as_json, f"Configuration exported to {path}")

    @settings_app.command("import")
    def import_cmd(file: Annotated[Path, typer.Argument(help="A configuration export (.yaml)")],
                   url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                   password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Import a configuration export; each section is applied or refused with its reason."""
        with errors():
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            with file.open("rb") as f:
                report = r.call("POST", "/appliance/api/config/import", files={"file": (file.name, f)})
        lines = [f"Applied: {', '.join(report['applied']) or 'nothing'}"]
        lines += [f"Refused: {x['section']}: {x['message']}" for x in report["refused"]]
        lines += [f"Ignored: {x['section']}: {x['reason']}" for x in report["ignored"]]
        emit(report, as_json, "\n".join(lines))
        if report["refused"]:
            raise typer.Exit(2)  # invalid input: the report names each refused section

    @app.command("factory-reset")
    def factory_reset_cmd(yes: YesOpt = False, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                          user: UserOpt = "admin", password: PasswordOpt = None, accept_agreement: AgreeOpt = False,
                          as_json: JsonOpt = False):
        """Wipe every site, certificate, key, backup and setting of a running appliance (APPL-06)."""
        with errors():
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            phrase = _confirm("factory reset", f"This wipes everything on {r.url}: every site, certificate, key, "
                              "backup and setting. Take a recovery kit first (tether kit export).", yes)
            res = r.call("POST", "/appliance/api/factory-reset", json={"confirm": phrase})
        emit(res, as_json, f"Appliance {res['serial_number']} reset to its factory state ({res['files_wiped']} "
                           "files wiped); log in as admin / password.")

    @app.command("shutdown")
    def shutdown_cmd(yes: YesOpt = False, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                     user: UserOpt = "admin", password: PasswordOpt = None, accept_agreement: AgreeOpt = False,
                     as_json: JsonOpt = False):
        """Shut a running appliance down cleanly (APPL-06)."""
        with errors():
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            _confirm("shut down", f"This stops the appliance at {r.url}.", yes)
            res = r.call("POST", "/appliance/api/shutdown")
        emit(res, as_json, "The appliance is shutting down.")
