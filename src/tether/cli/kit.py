"""``tether kit export``, ``tether kit show`` and ``tether recover`` (DR-05):
write the recovery kit of a running appliance, read its runbook, and rebuild
an appliance from it on new hardware (runtime/recover.py). The kit's password
comes from ``--kit-password-file``, TETHER_KIT_PASSWORD or a prompt, never
from the command line, and is not the login password (``--password``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from .appliance import AgreeOpt, admin_remote
from .output import JsonOpt, emit, errors, fail, out_target
from .remote import CaOpt, PasswordOpt, PinOpt, UrlOpt, UserOpt

KIT_PW_ENV = "TETHER_KIT_PASSWORD"
KitPwOpt = Annotated[Path | None, typer.Option("--kit-password-file", help=f"File holding the kit's password "
                                               f"(first line); else {KIT_PW_ENV}, else it is asked for")]
kit_app = typer.Typer(help="The recovery kit: everything a replacement appliance needs, in one file.",
                      no_args_is_help=True)


def kit_password(path: Path | None, confirm: bool = False) -> str:
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}", 2)
        return text.splitlines()[0] if text else ""
    pw = os.environ.get(KIT_PW_ENV)
    if pw:
        return pw
    return typer.prompt("Kit password", hide_input=True, confirmation_prompt=confirm)


def _private_dir(near: Path) -> Path:
    """A 0700 directory beside ``near`` (same file system) for the kit's members; the caller removes it."""
    base = near if near.is_dir() else near.parent
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".tether-kit-", dir=base))


def register(app: typer.Typer) -> None:
    app.add_typer(kit_app, name="kit")

    @kit_app.command("export")
    def export_cmd(out: Annotated[str, typer.Option("--out", help="Directory (default file name; created if "
                                                    "missing) or .tkit file to write")] = ".",
                   kit_password_file: KitPwOpt = None, url: UrlOpt = None, cacert: CaOpt = None,
                   pin_cert: PinOpt = None, user: UserOpt = "admin", password: PasswordOpt = None,
                   accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Download the recovery kit of a running appliance: configuration, certificates (.p12), a site backup
        taken now, the site package, vendor keys and its runbook, under one password."""
        pw = kit_password(kit_password_file, confirm=True)
        with errors():
            out_dir, out_file = out_target(out, ".tkit")
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            path = r.download("POST", "/appliance/api/kit", out_file or out_dir, json={"password": pw})
        emit({"file": str(path), "size": path.stat().st_size}, as_json,
             f"Recovery kit written to {path}\nKeep it and its password apart, off the appliance. "
             f"Its runbook: tether kit show {path}")

    @kit_app.command("show")
    def show_cmd(file: Path, kit_password_file: KitPwOpt = None, as_json: JsonOpt = False):
        """Check a kit (password, every member) and print its runbook."""
        from tether.backup import kit

        pw = kit_password(kit_password_file)
        work = _private_dir(Path(tempfile.gettempdir()))
        try:
            with errors():
                k = kit.open_kit(file, pw, work, keep={"runbook.md"})
                text = k.text("runbook.md")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        emit({"manifest": k.manifest, "runbook": text}, as_json, text)

    @app.command("recover")
    def recover_cmd(kit_file: Annotated[Path, typer.Option("--kit", help="The recovery kit (.tkit)")],
                    data: Annotated[Path, typer.Option("--data", envvar="TETHER_DATA",
                                                       help="The new appliance's data directory (must not exist "
                                                            "yet, or be empty)")],
                    map_: Annotated[list[str] | None, typer.Option(
                        "--map", help="OLD=NEW: the kit's address OLD becomes this machine's NEW (repeatable); "
                                      "needed for each address of the kit this machine does not have")] = None,
                    site_package: Annotated[Path | None, typer.Option(
                        "--site-package", help="The signed site package, if the kit has none")] = None,
                    dry_run: Annotated[bool, typer.Option("--dry-run", help="Open and check the kit, print the "
                                                          "plan, change nothing")] = False,
                    kit_password_file: KitPwOpt = None, as_json: JsonOpt = False):
        """Rebuild an appliance from its recovery kit: initialise, site package, configuration, certificates and
        their addresses, site restore. Prints the plan first; --dry-run prints only the plan."""
        from tether.backup import kit
        from tether.core.paths import DataDir
        from tether.runtime import recover

        d = DataDir.at(data)
        with errors():
            recover.check_new(d)  # before the password is asked and the kit opened
        pw = kit_password(kit_password_file)
        work = _private_dir(d.root.parent)
        try:
            with errors():
                maps = recover.parse_maps(map_ or [])
                k = kit.open_kit(kit_file, pw, work)
                plan = recover.make_plan(k, d, pw, maps, site_package)
                if as_json and dry_run:
                    emit({"dry_run": True, "plan": plan.public()}, True)
                    return
                if not as_json:
                    emit(None, False, "\n".join(plan.lines()))
                if dry_run:
                    emit(None, False, "Dry run: nothing was changed.")
                    return
                report = recover.run(plan, pw)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        lines = ["Recovered:"]
        if "site_package" in report:
            sp = report["site_package"]
            lines.append(f"  site package {sp['site_name']} {sp['version']} installed")
        cfg = report["configuration"]
        lines.append(f"  configuration: {', '.join(cfg['applied']) or 'nothing'} applied"
                     + "".join(f"; {r['section']} refused: {r['message']}" for r in cfg["refused"]))
        for c in report["certificates"]:
            lines.append(f"  certificate {c['name']!r} on {', '.join(c['addresses'])} (public part: {c['pem']})")
        if "restore" in report:
            lines.append(f"  site {report['restore']['site_name']} restored")
        lines.append(f"Next: tether serve --data {d.root} " + " ".join(f"--listen {x}" for x in report["listen"]))
        emit(report, as_json, "\n".join(lines))
