"""``tether drill`` (DR-02) through the /appliance API of a running appliance
(``--url``, the /appliance admin): run a drill and wait for its report,
``tether drill list`` and ``tether drill show ID``. The same service as
/appliance Status > Drills and ``/appliance/api/drills``. Exit 0 when the
drill passed (or passed with differences found, ``warn``), 9 when it failed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .backup import PwFileOpt, backup_password
from .output import JsonOpt, emit, errors, fail
from .remote import CaOpt, PasswordOpt, PinOpt, Remote, UrlOpt, UserOpt

EXIT_DRILL_FAILED = 9
AdminOpt = UserOpt  # the /appliance admin
drill_app = typer.Typer(help="Rehearse recovery and measure it (DR-02): restore rehearsal on a scratch appliance, "
                             "failover of the pair and back.", invoke_without_command=True)


def _remote(url, cacert, pin_cert, user, password) -> Remote:
    return Remote.from_options(url, cacert, pin_cert).appliance_login(user, password)


def _s(v, unit=" s") -> str:
    return "-" if v is None else f"{v}{unit}"


def describe(r: dict) -> str:
    lines = [f"Drill {r['id']}: {(r.get('result') or r['state']).upper()}"]
    rs = r.get("restore") or {}
    if rs:
        b, t = rs.get("backup") or {}, rs.get("timings") or {}
        lines.append(f"Restore rehearsal: {rs.get('result')} (backup: {b.get('source')} {b.get('file', '')})")
        lines.append(f"  restore {_s(t.get('restore_seconds'))}, scratch site answering after "
                     f"{_s(t.get('start_seconds'))} more; restore to answer {_s(t.get('restore_to_answer_seconds'))}")
        cmp = rs.get("comparison")
        if cmp:
            lines.append(f"  users {cmp['users']['restored']}/{cmp['users']['live']}, settings "
                         f"{cmp['settings']['restored']}/{cmp['settings']['live']} (restored/live)")
        lines += [f"  difference: {d}" for d in rs.get("differences") or []]
        if rs.get("error"):
            lines.append(f"  error: {rs['error']}")
    fo = r.get("failover") or {}
    if fo:
        lines.append(f"Failover ({fo.get('mode', '-')}): {fo.get('result')}"
                     + (f" ({fo['reason']})" if fo.get("reason") else ""))
        if fo.get("over"):
            o = fo["over"]["offsets"]
            lines.append(f"  RTO {_s(fo.get('rto_seconds'))} ({fo['over']['rto_to']}); promotion "
                         f"{_s(o.get('promotion'))}, swing {_s(o.get('traffic_swing'))}, clients back "
                         f"{_s(o.get('clients_back'))}")
            rpo = fo["rpo"]
            lines.append(f"  RPO {rpo['lost']} acknowledged writes lost of {rpo['acknowledged']} "
                         f"({rpo['refused']} refused while no appliance was primary); orphan files {rpo['orphan_files']}")
        if fo.get("back"):
            lines.append(f"  back: RTO {_s(fo['back']['rto_seconds'])}; roles restored: "
                         f"{'yes' if fo.get('roles_restored') else 'NO'}")
        if fo.get("error"):
            lines.append(f"  error: {fo['error']}")
    lines += [f"Error: {e}" for e in r.get("errors") or []]
    return "\n".join(lines)


@drill_app.callback()
def run(ctx: typer.Context,
        backup: Annotated[str, typer.Option("--backup", help="fresh (a backup taken now), latest (the newest kept "
                                            "on the appliance) or a .nsb FILE to upload")] = "fresh",
        password_file: PwFileOpt = None,
        no_failover: Annotated[bool, typer.Option("--no-failover", help="Only the restore rehearsal")] = False,
        unplanned: Annotated[bool, typer.Option("--unplanned", help="Stop the primary's serving and let the peer "
                                                "take over by itself (automatic failover), instead of a planned "
                                                "handover")] = False,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the report")] = 900,
        url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: AdminOpt = "admin",
        password: PasswordOpt = None, as_json: JsonOpt = False):
    """Run a drill and print its report (``list`` and ``show`` read past ones)."""
    if ctx.invoked_subcommand is not None:
        return
    with errors():
        r = _remote(url, cacert, pin_cert, user, password)
        if backup in ("fresh", "latest"):
            report = r.call("POST", "/appliance/api/drills", json={"backup": backup, "failover": not no_failover,
                                                                     "unplanned": unplanned})
        else:
            f = Path(backup)
            if not f.is_file():
                fail(f"--backup {backup}: no such file", 2, "--backup fresh, --backup latest or --backup FILE.nsb")
            pw = backup_password(password_file)
            with f.open("rb") as fh:
                report = r.call("POST", "/appliance/api/drills/upload", files={"file": (f.name, fh)},
                                data={"password": pw or "", "failover": "false" if no_failover else "true",
                                      "unplanned": "true" if unplanned else "false"})
        deadline = time.monotonic() + timeout
        while report["state"] == "running":
            if time.monotonic() > deadline:
                fail(f"drill {report['id']} did not finish within {timeout:.0f} s", 1,
                     f"tether drill show {report['id']}")
            time.sleep(0.5)
            report = r.call("GET", f"/appliance/api/drills/{report['id']}")
    emit(report, as_json, describe(report))
    if report.get("result") == "fail":
        raise typer.Exit(EXIT_DRILL_FAILED)


@drill_app.command("list")
def list_cmd(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: AdminOpt = "admin",
             password: PasswordOpt = None, as_json: JsonOpt = False):
    """Past drills, newest first, with their figures."""
    with errors():
        rows = _remote(url, cacert, pin_cert, user, password).call("GET", "/appliance/api/drills")
    text = "\n".join(f"{x['id']}  {x.get('result') or x['state']:<4}  restore {_s(x.get('restore_seconds'))}  "
                     f"to answer {_s(x.get('restore_to_answer_seconds'))}  differences {_s(x.get('differences'), '')}  "
                     f"RTO {_s(x.get('rto_seconds'))}  RPO {_s(x.get('rpo_writes_lost'), ' writes lost')}"
                     for x in rows) or "No drills yet."
    emit(rows, as_json, text)


@drill_app.command("show")
def show_cmd(drill_id: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
             user: AdminOpt = "admin", password: PasswordOpt = None, as_json: JsonOpt = False):
    """One drill's report."""
    with errors():
        report = _remote(url, cacert, pin_cert, user, password).call("GET", f"/appliance/api/drills/{drill_id}")
    emit(report, as_json, describe(report))


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
