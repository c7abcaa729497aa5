"""``tether readiness``: the readiness audit (DR-01) of a running appliance —
each named check pass, warn or fail, each failure with the command or page
that mends it; exit 9 when a check fails (docs/cli.md). ``tether readiness
copies`` shows the appliance the site package and vendor key kept off it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .appliance import AgreeOpt, admin_remote
from .output import JsonOpt, emit, errors
from .remote import CaOpt, PasswordOpt, PinOpt, UrlOpt, UserOpt

EXIT_NOT_READY = 9
MARK = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}

readiness_app = typer.Typer(help="The readiness audit (DR-01).", invoke_without_command=True)


def text(report: dict) -> str:
    lines = []
    for c in report["checks"]:
        lines.append(f"[{MARK[c['status']]}] {c['title']}: {c['detail']}")
        if c["status"] != "pass" and c.get("mend"):
            lines.append(f"       mend: {c['mend']}")
    n = report["counts"]
    lines.append(f"{report['status']}: {n['fail']} failing, {n['warn']} warning, {n['pass']} passing")
    return "\n".join(lines)


@readiness_app.callback()
def readiness(ctx: typer.Context, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
              user: UserOpt = "admin", password: PasswordOpt = None, accept_agreement: AgreeOpt = False,
              as_json: JsonOpt = False):
    """Run every readiness check on a running appliance; exit 9 when one fails."""
    if ctx.invoked_subcommand is not None:
        return
    with errors():
        report = admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call(
            "GET", "/appliance/api/readiness")
    emit(report, as_json, text(report))
    if report["status"] == "fail":
        raise typer.Exit(EXIT_NOT_READY)


@readiness_app.command("copies")
def copies(package: Annotated[Path, typer.Option("--package", help="The site package (.tsp) you keep")],
           vendor_key: Annotated[Path, typer.Option("--vendor-key", help="The vendor public key (PEM) you keep")],
           url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
           password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
    """Show the appliance your off-appliance copies; it compares them with what it installed."""
    with errors():
        r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
        with package.open("rb") as p, vendor_key.open("rb") as k:
            res = r.call("POST", "/appliance/api/readiness/copies",
                         files={"package": (package.name, p), "vendor_key": (vendor_key.name, k)})
    emit(res, as_json, f"The copies match the installed site package {res['version']}.")


def register(app: typer.Typer) -> None:
    app.add_typer(readiness_app, name="readiness")
