"""``tether failover ...``: the failover pair through the API of a running
appliance (``--url``): status, establish, break, sync-now. The same
service as /login > Management > Failover and ``/api/failover``."""

from __future__ import annotations

from typing import Annotated

import typer

from .output import JsonOpt, emit, errors, progress
from .remote import CaOpt, PasswordOpt, PinOpt, Remote, TokenOpt, UrlOpt

failover_app = typer.Typer(help="The failover pair (FO-*): establish, status, break, sync now.", no_args_is_help=True)
UserOpt = Annotated[str | None, typer.Option("--user", envvar="TETHER_USER", help="Site user name")]


def _remote(url, cacert, pin_cert, user, password, token) -> Remote:
    return Remote.from_options(url, cacert, pin_cert).site_login(user, password, token)


def describe(s: dict) -> str:
    lines = [f"Role: {s['role']} (generation {s['generation']})"]
    peer = s.get("peer")
    lines.append(f"Peer: {peer['peer_address']} ({peer['peer_id']}, {peer['peer_pin']})" if peer else "Peer: none")
    sync = s.get("sync") or {}
    if s["role"] == "backup":
        lines += [f"Sync: {sync.get('last_sync_result')}, last at {sync.get('last_sync_at')}",
                  f"Lag: {sync.get('lag_entries')} entries, {sync.get('lag_seconds')} s; "
                  f"blobs pending: {sync.get('blobs_pending')} ({sync.get('blob_bytes_pending')} bytes)",
                  f"Peer reachable: {'yes' if sync.get('peer_reachable') else 'no'}"]
        if sync.get("last_error"):
            lines.append(f"Last error: {sync['last_error']}")
    elif s["role"] == "primary":
        lines += [f"Backup at {sync.get('backup_through')} of {sync.get('head')}: lag {sync.get('lag_entries')} "
                  f"entries, {sync.get('lag_seconds')} s", f"Peer reachable: {'yes' if sync.get('peer_reachable') else 'no'}"]
    w = s.get("witness")
    if w:
        line = f"Witness: {w.get('state')}"
        if w.get("valid_for_seconds") is not None:
            line += f", valid for {w['valid_for_seconds']} s"
        if w.get("fencing_token"):
            line += f", fencing token {w['fencing_token']}"
        holder = w.get("holder")
        if holder:
            line += f"; holder {holder.get('appliance_id')} ({holder.get('address')}, token {holder.get('token')})"
        lines.append(line)
        if w.get("last_error"):
            lines.append(f"Witness error: {w['last_error']}")
    if s.get("suspended"):
        lines.append(f"Not serving: {s['suspended']}")
    return "\n".join(lines)


@failover_app.command("status")
def status(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None,
           password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
    """Role, generation, peer, last sync, lag and blobs pending."""
    with errors():
        s = _remote(url, cacert, pin_cert, user, password, token).call("GET", "/api/failover/status")
    emit(s, as_json, describe(s))


@failover_app.command("establish")
def establish(peer: Annotated[str, typer.Option("--peer", help="The future backup's address, HOST:PORT")],
              self_address: Annotated[str | None, typer.Option(
                  "--self-address", help="Where the peer reaches this appliance (default: the --url address)")] = None,
              url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None,
              password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
    """Run on the primary: pair with the appliance at --peer, which becomes the backup and syncs."""
    with errors():
        s = _remote(url, cacert, pin_cert, user, password, token).call(
            "POST", "/api/failover/establish", json={"peer": peer, "self_address": self_address})
    emit(s, as_json, "Failover established.\n" + describe(s))


@failover_app.command("break")
def break_cmd(force: Annotated[bool, typer.Option("--force", help="Break here even if the peer cannot be told")] = False,
              url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None,
              password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
    """End the pair; both appliances become standalone (role none)."""
    with errors():
        s = _remote(url, cacert, pin_cert, user, password, token).call("POST", "/api/failover/break",
                                                                         json={"force": force})
    emit(s, as_json, "Failover broken." + ("" if s.get("peer_told") else " The peer could not be told: "
                                           "break failover on it too.") + "\n" + describe(s))


@failover_app.command("sync-now")
def sync_now(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None,
             password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
    """On the backup: reconnect to the primary at once and recheck every blob."""
    with errors():
        r = _remote(url, cacert, pin_cert, user, password, token)
        with progress("Synchronising with the primary"):
            s = r.call("POST", "/api/failover/sync-now")
    emit(s, as_json, describe(s))


def register(app: typer.Typer) -> None:
    app.add_typer(failover_app, name="failover")


def _role_change(path: str, data_sync_first: bool, force: bool, url, cacert, pin_cert, user, password, token,
                 as_json: bool) -> None:
    with errors():
        s = _remote(url, cacert, pin_cert, user, password, token).call(
            "POST", path, json={"data_sync_first": data_sync_first, "force": force}, timeout=90)
    emit(s, as_json, describe(s))


SyncFirstOpt = Annotated[bool, typer.Option("--data-sync-first", help="The primary stops taking writes and the "
                                             "backup catches up fully before the roles swap (no write lost)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Change the role even though the peer cannot be reached")]


@failover_app.command("become-primary")
def become_primary(data_sync_first: SyncFirstOpt = False, force: ForceOpt = False, url: UrlOpt = None,
                   cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None, password: PasswordOpt = None,
                   token: TokenOpt = None, as_json: JsonOpt = False):
    """On the backup: take the primary role (planned with the peer reachable; --force when it is gone)."""
    _role_change("/api/failover/become-primary", data_sync_first, force, url, cacert, pin_cert, user, password,
                 token, as_json)


@failover_app.command("become-backup")
def become_backup(data_sync_first: SyncFirstOpt = False, force: ForceOpt = False, url: UrlOpt = None,
                  cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None, password: PasswordOpt = None,
                  token: TokenOpt = None, as_json: JsonOpt = False):
    """On the primary: hand the primary role to the peer (--force: step down even if it cannot be told)."""
    _role_change("/api/failover/become-backup", data_sync_first, force, url, cacert, pin_cert, user, password,
                 token, as_json)


orphans_app = typer.Typer(help="Changes a former primary took that the new primary never received (FO-08).",
                          no_args_is_help=True)
failover_app.add_typer(orphans_app, name="orphans")


@orphans_app.command("list")
def orphans_list(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None,
                 password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
    """The orphan files kept on the appliance at --url (the former primary)."""
    with errors():
        files = _remote(url, cacert, pin_cert, user, password, token).call("GET", "/api/failover/orphans")
    emit(files, as_json, "\n".join(f"{f['file']}: {f['count']} changes ({', '.join(f['tables'])}), generation "
                                   f"{f['from_generation']} -> {f['to_generation']}" for f in files) or "No orphans.")


@orphans_app.command("show")
def orphans_show(name: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None,
                 password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
    """One orphan file, every change in it (``--json`` gives the file itself, for ``orphans apply``)."""
    with errors():
        doc = _remote(url, cacert, pin_cert, user, password, token).call("GET", f"/api/failover/orphans/{name}")
    emit(doc, as_json, "\n".join(f"{e['seq']}: {e['op']} {e['tbl']} {e['key']}" for e in doc["entries"]))


@orphans_app.command("apply")
def orphans_apply(file: Annotated[str, typer.Argument(help="An orphan file (as kept, or `orphans show --json`)")],
                  seq: Annotated[list[int] | None, typer.Option("--seq", help="Only these entries (repeatable)")] = None,
                  url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = None,
                  password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
    """Re-apply chosen orphaned changes on the new primary at --url (they become new changes there)."""
    import json
    from pathlib import Path

    from tether.failover import orphans

    with errors():
        doc = orphans.read(Path(file))
        entries = orphans.select(doc, seq)
        res = _remote(url, cacert, pin_cert, user, password, token).call(
            "POST", "/api/failover/orphans/apply", json={"entries": json.loads(json.dumps(entries, default=str))})
    emit(res, as_json, f"{res['applied']} changes applied." + (f" Skipped (already there, or a delete of a row "
                       f"with a generated key): {res['skipped']}" if res["skipped"] else ""))
