"""``tether`` commands for the site's data: ``site seed`` (offline, on a
stopped appliance's data directory), ``config`` (any configuration kind or
settings section, as JSON), ``files`` (the file store, streamed) and
``history`` (filtered, paginated logged history). Remote commands log in as
a site user (--user) or use an API token (--token)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from tether.site.filestore import check_name

from .output import JsonOpt, emit, errors, fail, progress
from .remote import CaOpt, PasswordOpt, PinOpt, TokenOpt, UrlOpt
from .site import SiteUserOpt, _remote, site_app

config_app = typer.Typer(help="Site configuration: kinds (teams, jumpoints, ...) and settings sections.",
                         no_args_is_help=True)
files_app = typer.Typer(help="The file store (Remote Support sites).", no_args_is_help=True)
history_app = typer.Typer(help="Logged history: sessions, license usage, team activity ...", no_args_is_help=True)


def _doc(file: Path) -> dict:
    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{file}: not JSON ({exc})", 2)


def kind_names() -> list[str]:
    """Every name ``config`` takes: the configuration kinds and ``settings/SECTION``."""
    from tether.site.resources import KINDS
    from tether.site.sections import SECTIONS

    return [*KINDS, *(f"settings/{s}" for s in SECTIONS)]


def check_kind(kind: str) -> None:
    """An unknown kind is refused before connecting, with the closest real name (difflib)."""
    import difflib

    names = kind_names()
    if kind in names:
        return
    close = difflib.get_close_matches(kind.replace("_", "-"), names, n=1, cutoff=0.6) or \
        difflib.get_close_matches(kind, names, n=1, cutoff=0.5)
    fail(f"no configuration kind {kind!r}", 2,
         f"did you mean {close[0]}? (tether config list {close[0]})" if close
         else "one of: " + ", ".join(names))


def _segment(name: str) -> str:
    """A file name as one URL path segment (percent-encoded; a bare ``.`` or ``..`` too, which a URL
    would otherwise drop as a dot segment)."""
    q = quote(name, safe="")
    return q.replace(".", "%2E") if q in (".", "..") else q


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.add_typer(files_app, name="files")
    app.add_typer(history_app, name="history")

    @site_app.command("seed")
    def seed_cmd(data: Annotated[Path, typer.Option("--data", help="A stopped appliance's data directory")],
                 sessions: int = 10_000, files: int = 20, recordings: int = 20, users: int = 50, teams: int = 5,
                 jump_clients: int = 200, events_per_session: int = 4, max_file_mb: float = 20.0,
                 recording_mb: float = 5.0, seed: int = 1, as_json: JsonOpt = False):
        """Fill the site with realistic generated data (users, teams, jump clients, sessions with events,
        files of mixed sizes, recordings)."""
        from tether.core.paths import DataDir
        from tether.runtime import open_offline
        from tether.site.seed import SeedPlan
        from tether.site.seed import seed as run_seed

        plan = SeedPlan(users, teams, jump_clients, sessions, events_per_session, files, max_file_mb, recordings,
                        recording_mb, seed=seed)
        with errors(), progress("Seeding") as step:
            with open_offline(DataDir.at(data)) as a:
                if a.site is None:
                    fail("this appliance has no site", 4, "install a site package first")
                t0 = time.monotonic()
                stats = run_seed(a.site, plan, lambda stage, done, total: step(done, total, stage))
                stats["seconds"] = round(time.monotonic() - t0, 2)
        emit(stats, as_json)

    def _kind_path(kind: str) -> str:
        check_kind(kind)
        return f"/api/config/settings/{kind.removeprefix('settings/')}" if kind.startswith("settings/") \
            else f"/api/config/{kind}"

    @config_app.command("list")
    def config_list(kind: Annotated[str, typer.Argument(help="e.g. teams, jumpoints, security-providers")],
                    url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                    password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """List the entries of a configuration kind."""
        with errors():
            rows = _remote(url, cacert, pin_cert, user, password, token).call("GET", _kind_path(kind))
        emit(rows, as_json, "\n".join(str(r.get("name")) for r in rows) if isinstance(rows, list) else None)

    @config_app.command("get")
    def config_get(kind: str, name: Annotated[str | None, typer.Argument()] = None, url: UrlOpt = None,
                   cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                   password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """Print one entry (or a settings section: settings/NAME) as JSON (with or without --json)."""
        with errors():
            path = _kind_path(kind) + (f"/{name}" if name else "")
            emit(_remote(url, cacert, pin_cert, user, password, token).call("GET", path), True)

    @config_app.command("create")
    def config_create(kind: str, file: Annotated[Path, typer.Argument(help="JSON document, '-' for stdin")],
                      url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                      password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """Create an entry from a JSON document; invalid input is refused and nothing is stored."""
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call("POST", _kind_path(kind),
                                                                             json=_doc(file))
        emit(res, as_json, f"{kind}: {res.get('name')} created")

    @config_app.command("set")
    def config_set(kind: str, file: Annotated[Path, typer.Argument(help="JSON document, '-' for stdin")],
                   name: Annotated[str | None, typer.Option(help="The entry (omit for settings/NAME)")] = None,
                   url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                   password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """Replace an entry (or a settings section) with a JSON document; omitted secrets are kept."""
        with errors():
            path = _kind_path(kind) + (f"/{name}" if name else "")
            res = _remote(url, cacert, pin_cert, user, password, token).call("PUT", path, json=_doc(file))
        emit(res, as_json, f"{kind} {name or ''} saved")

    @config_app.command("test-provider")
    def config_test_provider(name: Annotated[str, typer.Argument(help="The security provider's name")],
                             username: Annotated[str, typer.Option("--username", help="The directory user to try")],
                             url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                             user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                             as_json: JsonOpt = False):
        """Try a directory user's password against one security provider and print each step (connect,
        TLS, bind, search, user bind, groups). The password tried is read from TETHER_TEST_PASSWORD, else
        asked for. Exit 0 when the login would succeed, 3 when it would not."""
        import getpass
        import os

        tried = os.environ.get("TETHER_TEST_PASSWORD")
        if tried is None:
            tried = getpass.getpass(f"Password of {username} to try: ")
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call(
                "POST", f"/api/config/security-providers/{name}/test", json={"username": username, "password": tried})
        lines = [f"{'ok    ' if s['ok'] else 'FAILED'} {s['step']:<10} {s['detail']}" for s in res["steps"]]
        if res.get("user"):
            u = res["user"]
            lines.append(f"user {u['username']} ({u['display_name']}); groups: {', '.join(u['groups']) or 'none'}; "
                         f"group policies: {', '.join(res.get('group_policies') or []) or 'none'}")
        lines.append(f"result: {'passed' if res['ok'] else 'failed'} ({res['outcome']})")
        emit(res, as_json, "\n".join(lines))
        if not res["ok"]:
            raise typer.Exit(3)

    @config_app.command("delete")
    def config_delete(kind: str, name: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                      user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                      as_json: JsonOpt = False):
        """Delete an entry (refused while other entries use it)."""
        with errors():
            res = _remote(url, cacert, pin_cert, user, password, token).call("DELETE", f"{_kind_path(kind)}/{name}")
        emit(res, as_json, f"{kind}: {name} deleted")

    @files_app.command("upload")
    def files_upload(file: Path, name: Annotated[str | None, typer.Option(help="Name in the store")] = None,
                     description: str = "", url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                     user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                     as_json: JsonOpt = False):
        """Upload a file (streamed; any size up to the store's limit)."""
        with errors():
            check_name(name or file.name)  # the store's one rule, before connecting
            r = _remote(url, cacert, pin_cert, user, password, token)
            with file.open("rb") as f:
                res = r.call("PUT", f"/api/files/{_segment(name or file.name)}", content=f, params={"description": description},
                             headers={"Content-Length": str(file.stat().st_size)})
        emit(res, as_json, f"{res['name']} uploaded: {res['size']} bytes, sha256 {res['sha256']}")

    @files_app.command("list")
    def files_list(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: SiteUserOpt = None,
                   password: PasswordOpt = None, token: TokenOpt = None, as_json: JsonOpt = False):
        """List the file store."""
        with errors():
            rows = _remote(url, cacert, pin_cert, user, password, token).call("GET", "/api/files")
        emit(rows, as_json, "\n".join(f"{r['size']:>12}  {r['name']}" for r in rows))

    @files_app.command("delete")
    def files_delete(name: str, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                     user: SiteUserOpt = None, password: PasswordOpt = None, token: TokenOpt = None,
                     as_json: JsonOpt = False):
        """Delete a file from the store."""
        with errors():  # the appliance applies the rule (a file an older release let in is still deletable)
            remote = _remote(url, cacert, pin_cert, user, password, token)
            res = remote.call("DELETE", f"/api/files/{_segment(name)}")
        emit(res, as_json, f"{name} deleted")

    @history_app.command("list")
    def history_list(kind: Annotated[str, typer.Argument(help="sessions, license-usage, team-activity, ...")] =
                     "sessions", since: str | None = None, until: str | None = None,
                     for_user: Annotated[str | None, typer.Option("--for-user", help="Filter by user")] = None,
                     type_: Annotated[str | None, typer.Option("--type", help="Filter by type")] = None,
                     limit: int = 50, cursor: str | None = None, url: UrlOpt = None, cacert: CaOpt = None,
                     pin_cert: PinOpt = None, user: SiteUserOpt = None, password: PasswordOpt = None,
                     token: TokenOpt = None, as_json: JsonOpt = False):
        """One page of logged history, newest first; --cursor continues with the next page."""
        params = {k: v for k, v in {"since": since, "until": until, "user": for_user, "type": type_,
                                    "limit": limit, "cursor": cursor}.items() if v is not None}
        with errors():
            page = _remote(url, cacert, pin_cert, user, password, token).call("GET", f"/api/reporting/{kind}",
                                                                              params=params)
        emit(page, as_json, "\n".join(json.dumps(r, default=str) for r in page["items"])
             + (f"\nnext: --cursor {page['next_cursor']}" if page["next_cursor"] else ""))
