"""``tether failover ...``: the failover pair through the API of a running
appliance (``--url``): status, establish, break, sync-now. The same
service as /login > Management > Failover and ``/api/failover``."""

from __future__ import annotations

from typing import Annotated

import typer

from .output import JsonOpt, emit, errors
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
        s = _remote(url, cacert, pin_cert, user, password, token).call("POST", "/api/failover/sync-now")
    emit(s, as_json, describe(s))


def register(app: typer.Typer) -> None:
    app.add_typer(failover_app, name="failover")
