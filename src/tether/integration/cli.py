"""``tether-integration``: ``sync --once`` (one pass, for cron or a Windows
scheduled task), ``run`` (stays running and follows the schedules),
``status --json`` (what was pulled, when, what failed) and ``prune``
(retention of the backups at the destination, ``--dry-run`` lists what would
go). Options before the command name the configuration (docs/integration.md);
errors are ``Error:`` / ``Try:`` lines with the exit codes of docs/cli.md
(9: the destination refused a write)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from tether import __version__
from tether.cli.output import JsonOpt, emit, errors, fail
from tether.core import clock
from tether.core.errors import Invalid

from . import config as C
from . import retention
from .destinations import open_destination
from .progress import Reporter
from .pull import Pass
from .siteapi import Site
from .state import State

ENV_CONFIG = "TETHER_INTEGRATION_CONFIG"
RETRY_AFTER_FAILURE = 300.0
app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Pull a Tether site's backups, session data and recordings into a folder or a bucket.")
_flags: dict = {}
_config_path: list[Path | None] = [None]

Keep = Annotated[Optional[int], typer.Option(min=0)]


@app.callback()
def main_options(
        config: Annotated[Optional[Path], typer.Option("--config", "-c", envvar=ENV_CONFIG,
                                                       help="The TOML configuration file.")] = None,
        site_url: Annotated[Optional[str], typer.Option(help="The site's https:// address.")] = None,
        pinned_cert: Annotated[Optional[Path], typer.Option(help="Trust only this certificate (PEM).")] = None,
        ca_file: Annotated[Optional[Path], typer.Option(help="Trust certificates issued by this CA (PEM).")] = None,
        client_id: Annotated[Optional[str], typer.Option(help="The API account's client id.")] = None,
        client_secret_file: Annotated[Optional[Path], typer.Option(help="A file holding the client secret.")] = None,
        client_secret_env: Annotated[Optional[str], typer.Option(help="A variable holding the client secret.")] = None,
        folder: Annotated[Optional[Path], typer.Option(help="Destination: this local folder.")] = None,
        bucket: Annotated[Optional[str], typer.Option(help="Destination: this S3 bucket.")] = None,
        prefix: Annotated[Optional[str], typer.Option(help="Key prefix in the bucket.")] = None,
        endpoint_url: Annotated[Optional[str], typer.Option(help="The S3-compatible endpoint.")] = None,
        state_dir: Annotated[Optional[Path], typer.Option(help="Where the state file and partial downloads go.")] = None,
) -> None:
    _config_path[0] = config
    _flags.update({"site.url": site_url, "site.pinned_cert": pinned_cert and str(pinned_cert),
                   "site.ca_file": ca_file and str(ca_file), "site.client_id": client_id,
                   "site.client_secret_file": client_secret_file and str(client_secret_file),
                   "site.client_secret_env": client_secret_env, "state.dir": state_dir and str(state_dir),
                   "destination.bucket": bucket, "destination.prefix": prefix,
                   "destination.endpoint_url": endpoint_url})
    if folder is not None:
        _flags.update({"destination.type": "folder", "destination.path": str(folder)})
    elif bucket is not None:
        _flags["destination.type"] = "s3"


def _load(keep: dict | None = None) -> C.Config:
    flags = dict(_flags)
    for k, v in (keep or {}).items():
        flags[f"backups.{k}"] = v
    return C.load(_config_path[0], flags)


def _kinds(cfg: C.Config, asked: list[str] | None) -> list[str]:
    if asked:
        bad = [k for k in asked if k not in C.KINDS]
        if bad:
            raise Invalid(f"--kind: {', '.join(bad)}; one of {', '.join(C.KINDS)}", field="kind")
        return asked
    kinds = [k for k in C.KINDS if cfg.schedules[k].every]
    if not kinds:
        raise Invalid("nothing to pull: no kind has a schedule", field="every",
                      hint="set backups.every, sessions.every or recordings.every (e.g. \"1h\"), or pass --kind")
    return kinds


def one_pass(cfg: C.Config, kinds: list[str], out: Reporter, now=clock.now) -> list[dict]:
    state = State(cfg.state_dir)
    dest = open_destination(cfg.destination)
    with state.locked(), Site(cfg) as site:
        return Pass(cfg, state, site, dest, now, out).run(kinds)


@app.command()
def sync(once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron or a scheduled task).")] = False,
         kind: Annotated[Optional[list[str]], typer.Option(help="Only this kind (backups, sessions, recordings); "
                                                                "repeatable.")] = None,
         keep_last: Keep = None, keep_daily: Keep = None, keep_weekly: Keep = None, keep_monthly: Keep = None,
         as_json: JsonOpt = False) -> None:
    """Pull every scheduled kind once (or the --kind ones), then apply the backups' retention.

    With --json, stdout gets the status document after the pass (as ``status --json``), plus the
    pass's ``failures``; progress stays on stderr."""
    if not once:
        fail("sync needs --once (use `tether-integration run` to keep following the schedules)", 2,
             "tether-integration sync --once")
    with errors():
        cfg = _load({"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly,
                     "keep_monthly": keep_monthly})
        out = Reporter()
        failures = one_pass(cfg, _kinds(cfg, kind), out)
        if as_json:
            emit({**_status_doc(cfg, cfg.state_dir), "pass_failures": failures}, True)
    if failures:
        fail(f"{len(failures)} kind(s) failed: " + "; ".join(f"{f['kind']}: {f['message']}" for f in failures),
             failures[0]["exit_code"], "tether-integration status --json shows what failed")


def _due(cfg: C.Config, state: State, now: float) -> tuple[list[str], float]:
    """The kinds due now, and when the next one is due."""
    due, nxt = [], now + 3600
    for kind in C.KINDS:
        every = cfg.schedules[kind].every
        if not every:
            continue
        k = state.doc["kinds"].get(kind, {})
        last_ok, last_try = k.get("last_success"), k.get("last_attempt")
        at = (last_ok + every) if last_ok else now
        if k.get("last_error") and last_try:  # the last attempt failed: again after min(every, 5 min)
            at = last_try + min(every, RETRY_AFTER_FAILURE)
        if at <= now:
            due.append(kind)
        else:
            nxt = min(nxt, at)
    return due, nxt


def _event(as_json: bool, out: Reporter, text: str, **doc) -> None:
    """One line of ``run``: plain text on stderr, or with --json one JSON object per line on stdout."""
    if as_json:
        sys.stdout.write(json.dumps({"time": clock.now(), **doc}, sort_keys=True, default=str) + "\n")
        sys.stdout.flush()
    else:
        out.line(text)


@app.command()
def run(as_json: JsonOpt = False) -> None:
    """Stay running: pull each kind when its schedule says (``every``), until SIGTERM or Ctrl-C.

    With --json, each event (started, pass, stopped) is one JSON object per line on stdout."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with errors():
        cfg = _load()
        _kinds(cfg, None)
    out = Reporter()
    _event(as_json, out, f"tether-integration {__version__}: following the schedules of {cfg.site_url}",
           event="started", version=__version__, site=cfg.site_url)
    while not stop.is_set():
        with errors():
            state = State(cfg.state_dir).load()
        due, nxt = _due(cfg, state, clock.now())
        if due:
            try:
                failures = one_pass(cfg, due, out)
                if as_json:
                    _event(True, out, "", event="pass", kinds=due, failures=failures)
            except Exception as exc:  # recorded in the state; a service keeps going
                msg = str(getattr(exc, "message", exc))
                _event(as_json, out, f"pass failed: {msg}", event="pass", kinds=due, error=msg)
            continue
        stop.wait(max(0.2, min(nxt - clock.now(), 60.0)))
    _event(as_json, out, "stopped", event="stopped")


def _status_doc(cfg: C.Config | None, sd: Path) -> dict:
    """What was pulled, when and what failed, from the state file in ``sd``."""
    state = State(sd).load()
    doc = {"state_dir": str(sd), "site": state.doc["site"], "kinds": {}, "failures": state.doc["failures"],
           "uploads_in_progress": sorted(state.doc["uploads"])}
    due = _due(cfg, state, clock.now()) if cfg else None
    for kind, k in state.doc["kinds"].items():
        every = cfg.schedules[kind].every if cfg else None
        nd = None
        if every:
            nd = clock.now() if kind in due[0] else (k["last_success"] or clock.now()) + every
        doc["kinds"][kind] = {"pulled": k["pulled"], "last_attempt": k["last_attempt"],
                              "last_success": k["last_success"], "last_error": k["last_error"],
                              "recent": k["recent"], "every_seconds": every, "next_due": nd,
                              **({"still_open": len(k.get("open", []))} if kind == "sessions" else {}),
                              **({"missing": k.get("missing", [])} if kind == "recordings" else {}),
                              **({"last_backup": k.get("last")} if kind == "backups" else {})}
    return doc


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """What was pulled, when, and what failed (from the state file; the site is not contacted)."""
    with errors():
        try:
            cfg = _load()
        except Invalid:
            cfg = None
        sd = cfg.state_dir if cfg else (Path(_flags["state.dir"]) if _flags.get("state.dir") else None)
        if sd is None:
            raise Invalid("status: give --config or --state-dir", field="state_dir")
        doc = _status_doc(cfg, sd)
    if as_json:
        emit(doc, True)
        return
    for kind, k in doc["kinds"].items():
        err = f"; last error: {k['last_error']['message']}" if k["last_error"] else ""
        sys.stdout.write(f"{kind}: {k['pulled']} pulled, last success {k['last_success']}{err}\n")


@app.command()
def prune(keep_last: Keep = None, keep_daily: Keep = None, keep_weekly: Keep = None, keep_monthly: Keep = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
          as_json: JsonOpt = False) -> None:
    """Apply the backups' retention (restic-style --keep-* flags over the config's) at the destination."""
    with errors():
        cfg = _load({"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly,
                     "keep_monthly": keep_monthly})
        if cfg.retention.empty:
            raise Invalid("no retention rule: give --keep-last, --keep-daily, --keep-weekly or --keep-monthly",
                          field="keep_last")
        dest = open_destination(cfg.destination)
        kept, removed = retention.plan(retention.parse(dest.list("backups/")), cfg.retention)
        if not dry_run:
            for snap in removed:
                dest.delete(snap.key)
    doc = {"dry_run": dry_run, "keep": [{"key": s.key, "reasons": r} for s, r in kept],
           "remove": [s.key for s in removed]}
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    for s, r in kept:
        sys.stdout.write(f"keep    {s.key}  ({', '.join(r)})\n")
    for s in removed:
        sys.stdout.write(f"{'would remove' if dry_run else 'removed'} {s.key}\n")


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """This program's version and the reporting API versions it supports."""
    from .siteapi import supported_api

    apis = sorted(supported_api())
    emit({"version": __version__, "reporting_api": apis}, as_json,
         f"tether-integration {__version__} (reporting API {', '.join(map(str, apis))})")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
