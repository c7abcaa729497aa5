"""``tether backup``, ``tether verify`` and ``tether restore`` (BK-*, DR-03):
offline on a stopped appliance's data directory (``--data``) or through the
API of a running one (``--url``). Passwords come from a file or a variable,
never from the command line's arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .output import JsonOpt, emit, errors, fail, out_target, progress
from .remote import CaOpt, PasswordOpt, PinOpt, Remote, TokenOpt, UrlOpt

DataOpt = Annotated[Path | None, typer.Option("--data", help="Act offline on this stopped appliance's data directory")]
PwFileOpt = Annotated[Path | None, typer.Option(
    "--backup-password-file", "--password-file",
    help="File holding the BACKUP's password (first line); else the TETHER_BACKUP_PASSWORD variable. Not the "
         "login password (--login-password, TETHER_SITE_PASSWORD)")]
SiteUserOpt = Annotated[str | None, typer.Option("--user", envvar="TETHER_USER", help="Site user name (to log in)")]
LoginPwOpt = Annotated[str | None, typer.Option(
    "--login-password", "--password",
    help="The site user's LOGIN password, not the backup's (prefer TETHER_SITE_PASSWORD, or TETHER_PASSWORD)")]
CLI_HINT = ("tether backup --backup-password-file FILE (or TETHER_BACKUP_PASSWORD), or --no-password for an "
            "unprotected backup")


class _Reading:
    """A file read for an upload, reporting how much of it has been read (the progress of a restore)."""

    def __init__(self, f, advance):
        self.f, self.advance, self.done = f, advance, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        self.done += len(chunk)
        self.advance(self.done)
        return chunk

    def __getattr__(self, name):  # fileno, seek, tell ...: the file's own (httpx sizes the upload with them)
        return getattr(self.f, name)

def backup_password(path: Path | None, required: bool = False) -> str | None:
    if path is not None:
        try:
            return path.read_text().rstrip("\r\n")
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}", 2)
    pw = os.environ.get("TETHER_BACKUP_PASSWORD")
    if required and not pw:
        fail("give the backup password with --backup-password-file or TETHER_BACKUP_PASSWORD", 2)
    return pw or None

def _offline(data: Path):
    from tether.core.paths import DataDir
    from tether.runtime import open_offline

    return open_offline(DataDir.at(data))

def _summary(r: dict) -> str:
    lines = [f"Site {r['site_name']} ({r['edition']}), version {r['product_version']}, "
             f"created {r['created_at']}, {'password-protected' if r['protected'] else 'not protected'}",
             f"Logged history included: {'yes' if r['include_history'] else 'no'}",
             f"Members: {r['members']} ({r['bytes']} bytes)",
             f"Restorable here: {'yes' if r['restorable_here'] else 'NO'} ({r['version_note']})"]
    rows = {k: v for k, v in r["tables"].items() if v and k not in ("alembic_version", "sqlite_sequence")}
    lines.append("Holds: " + ", ".join(f"{k} {v}" for k, v in rows.items()))
    for x in r["left_out"]:
        lines.append(f"Left out: {x.get('name', x['what'])}: {x['reason']}")
    return "\n".join(lines)

def register(app: typer.Typer) -> None:
    app.add_typer(snapshot_app, name="snapshot")

    @app.command("backup")
    def backup(out: Annotated[str, typer.Option("--out", help="Directory (default file name; created if missing) "
                                                "or .nsb file to write")] = ".",
               include_history: Annotated[bool, typer.Option("--include-history", help="Add logged history")] = False,
               password_file: PwFileOpt = None,
               no_password: Annotated[bool, typer.Option("--no-password", help="Write an unprotected backup")] = False,
               data: DataOpt = None, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
               user: SiteUserOpt = None, password: LoginPwOpt = None, token: TokenOpt = None,
               as_json: JsonOpt = False):
        """Take a site backup (.nsb), protected by a password (--backup-password-file FILE or the
        TETHER_BACKUP_PASSWORD variable) unless --no-password."""
        from tether.backup import protection

        given = None if no_password else backup_password(password_file)
        with errors():
            pw = protection.backup_password(given, no_password=no_password, hint=CLI_HINT)
            out_dir, out_file = out_target(out, ".nsb")
            if data is not None:
                with _offline(data) as a, progress("Backing up the site"):
                    res = a.backups.take(password=pw, include_history=include_history, actor="cli",
                                         source_ip="cli", out_dir=out_dir, actor_kind="cli")
                    path = res.path.rename(out_file) if out_file else res.path
            else:
                r = Remote.from_options(url, cacert, pin_cert).site_login(user, password, token)
                with progress("Backing up the site"):
                        path = r.download("POST", "/api/backup", out_file or out_dir,
                                      json={"password": pw, "no_password": no_password,
                                            "include_history": include_history})
        emit({"file": str(path), "size": path.stat().st_size}, as_json, f"Backup written to {path}")

    @app.command("verify")
    def verify(file: Path, password_file: PwFileOpt = None, as_json: JsonOpt = False):
        """Check a backup's integrity, password and version compatibility without restoring it."""
        from tether.backup.service import verify_file

        with errors(), progress(f"Verifying {file.name}"):
            report = verify_file(file, backup_password(password_file))
        emit(report, as_json, _summary(report))
        if not report["restorable_here"]:
            raise typer.Exit(5)

    @app.command("restore")
    def restore(file: Path, password_file: PwFileOpt = None,
                force: Annotated[bool, typer.Option("--force", help="Restore an unsupported older version, "
                                                    "accepting the risk the refusal names")] = False,
                confirm_failover: Annotated[bool, typer.Option(
                    "--confirm-failover", help="Restore although this appliance is in a failover pair (FO-09: "
                    "the supported path is to break failover first)")] = False,
                data: DataOpt = None, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                user: SiteUserOpt = None, password: LoginPwOpt = None, token: TokenOpt = None,
                as_json: JsonOpt = False):
        """Restore a site backup; the site is replaced only if everything checks out. The backup's password:
        --backup-password-file FILE or TETHER_BACKUP_PASSWORD."""
        pw = backup_password(password_file)
        with errors():
            if data is not None:
                with _offline(data) as a, progress(f"Restoring {file.name}"):
                    res = a.backups.restore(file, pw, force=force, actor="cli", source_ip="cli",
                                            confirm_failover=confirm_failover)
            else:
                r = Remote.from_options(url, cacert, pin_cert).site_login(user, password, token)
                with file.open("rb") as f, progress(f"Restoring {file.name}", file.stat().st_size, "bytes") as step:
                    res = r.call("POST", "/api/restore", files={"file": (file.name, _Reading(f, step))},
                                 data={"password": pw or "", "force": "true" if force else "false",
                                       "confirm_failover": "true" if confirm_failover else "false"})
        text = f"Restored site {res['site_name']} from a {res['backup_version']} backup ({res['action']})"
        for w in res["warnings"]:
            text += f"\nWarning: {w}"
        emit(res, as_json, text)



snapshot_app = typer.Typer(help="Whole-appliance snapshots (the equivalent of a VM snapshot).",
                           no_args_is_help=True)


@snapshot_app.command("create")
def snapshot_create(out: Annotated[str, typer.Option("--out", help="Directory (created if missing) or .tsnap "
                                                     "file")] = ".",
                    password_file: PwFileOpt = None, data: DataOpt = None, url: UrlOpt = None,
                    cacert: CaOpt = None, pin_cert: PinOpt = None,
                    user: Annotated[str, typer.Option("--user", envvar="TETHER_USER")] = "admin",
                    password: PasswordOpt = None,
                    accept_agreement: Annotated[bool, typer.Option("--accept-agreement")] = False,
                    as_json: JsonOpt = False):
    """Snapshot all state of an appliance (/appliance and /login, certificates included)."""
    pw = backup_password(password_file, required=True)
    with errors():
        out_dir, out_file = out_target(out, ".tsnap")
        if data is not None:
            from tether.backup import appliance_snapshot

            with _offline(data) as a:
                path = appliance_snapshot.create(a, out_dir, pw)
                if out_file:
                    path = path.rename(out_file)
        else:
            r = Remote.from_options(url, cacert, pin_cert).appliance_login(user, password, accept_agreement)
            path = r.download("POST", "/appliance/api/snapshot", out_file or out_dir, json={"password": pw})
    emit({"file": str(path), "size": path.stat().st_size}, as_json, f"Snapshot written to {path}")


@snapshot_app.command("restore")
def snapshot_restore(file: Path, data: Annotated[Path, typer.Option("--data", help="The stopped appliance's "
                                                                    "data directory")],
                     password_file: PwFileOpt = None, as_json: JsonOpt = False):
    """Put a stopped appliance back to a snapshot (everything is replaced)."""
    from tether.backup import appliance_snapshot
    from tether.core.paths import DataDir
    from tether.runtime import locked

    pw = backup_password(password_file, required=True)
    with errors():
        d = DataDir.at(data)
        appliance_snapshot.recover(d.root)
        if d.root.exists():
            with locked(d):
                pass  # refuses while an appliance runs on it
        res = appliance_snapshot.restore(d, file, pw)
    emit(res, as_json, f"Appliance {res['serial_number']} restored to its snapshot of {res['created_at']}")
