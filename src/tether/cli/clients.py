"""The client programs' command lines: ``tether-jump`` and ``tether-jumpoint``
(install, run, status) and ``tether-rep`` (list, shell, tunnel). Errors are
printed as ``Error:`` / ``Try:`` lines with the exit codes of docs/cli.md."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import Optional

import typer
from websockets.exceptions import WebSocketException

from tether.clients.agent import AgentClient, Identity, install
from tether.clients.rep import Console, RequestFailed
from tether.clients.transport import BACKOFF_CAP, Refused, Site, describe, split_site
from tether.clients.trust import UntrustedCertificate
from tether.core import netaddr

from .output import JsonOpt, emit, fail

HOSTS_HELP = "a hosts-format file consulted before DNS at every connection attempt (or TETHER_HOSTS_FILE)"


def _hosts(path: Optional[Path]) -> Optional[Path]:
    env = os.environ.get("TETHER_HOSTS_FILE")
    return path or (Path(env) if env else None)


def _logging(state: Path | None, verbose: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if state is not None:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(logging.FileHandler(state / "client.log"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(message)s")


def _agent_app(kind: str, label: str, default_state: str) -> typer.Typer:
    app = typer.Typer(help=f"The Tether {label}: install it once with an installer token from /login, then "
                           "run it; it stays connected and reconnects by itself.", no_args_is_help=True,
                      add_completion=False)
    state_opt = typer.Option(Path(default_state).expanduser(), "--state", help="the client's state directory")

    @app.command("install")
    def install_cmd(site: str = typer.Option(..., help="the site's hostname[:port], as clients will reach it"),
                    token: str = typer.Option(..., help="the one-time installer token from /login"),
                    state: Path = state_opt,
                    cacert: Optional[Path] = typer.Option(None, help="trust the site through this CA root (PEM)"),
                    hostname: Optional[str] = typer.Option(None, help="the name to register (default: this host's)"),
                    hosts_file: Optional[Path] = typer.Option(None, help=HOSTS_HELP), as_json: JsonOpt = False):
        """Register with the site and keep the identity in the state directory."""
        _logging(None, False)
        if (state / "identity.json").exists():
            fail(f"{state} already holds an identity", 5, f"use another --state or remove {state}/identity.json")
        try:
            ident = install(kind, site, token, state, cacert.read_text() if cacert else None, _hosts(hosts_file),
                            hostname)
        except ValueError as e:
            fail(str(e), 2)
        except Refused as e:
            fail(f"the site refused the token: {e}", 3, "create a new deployment in /login")
        except (UntrustedCertificate, ssl.SSLError, OSError) as e:
            fail(describe(e), 1, "check --site, and that the token is from this site")
        run = f"tether-{'jump' if kind == 'jump' else 'jumpoint'} run --state {state}"  # the rest is in the state
        emit({"site": ident.site, "kind": kind, "name": ident.name, "identity": str(state / "identity.json"),
              "hosts_file": ident.hosts_file, "run": run}, as_json,
             f"registered with {ident.site} as {kind} {ident.name!r}; identity in {state}/identity.json\n"
             f"start it with: {run}")

    @app.command("run")
    def run_cmd(state: Path = state_opt, hosts_file: Optional[Path] = typer.Option(None, help=HOSTS_HELP),
                max_backoff: float = typer.Option(BACKOFF_CAP, min=1, max=600,
                                                  help="the longest wait between reconnection attempts (s)"),
                verbose: bool = typer.Option(False, "--verbose", "-v"), as_json: JsonOpt = False):
        """Stay connected to the site (foreground; run it as a service). Logs go to stderr; with --json,
        stdout gets one JSON line when it stops: why."""
        ident = Identity.load(state)
        _logging(state, verbose)
        client = AgentClient(ident, _hosts(hosts_file), max_backoff=max_backoff)

        async def main():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, client.stop)
            return await client.run()

        why = asyncio.run(main())
        if as_json:
            emit({"stopped": why}, True)
        if why == "revoked":
            fail("the site revoked this client's identity", 3, "deploy the client again with a new token")

    @app.command("status")
    def status_cmd(state: Path = state_opt, as_json: JsonOpt = False):
        """Show the identity kept in the state directory (never the secret)."""
        ident = Identity.load(state)
        info = {"site": f"{ident.site}:{ident.port}", "kind": ident.kind, "name": ident.name,
                "client_id": ident.client_id, "trust": "pin " + ident.trust["pin"] if ident.trust.get("pin")
                else "CA root"}
        emit(info, True)  # JSON with or without --json (as it always printed)

    return app


jump_app = _agent_app("jump", "jump client", "~/.local/state/tether-jump")
jumpoint_app = _agent_app("jumpoint", "jumpoint", "~/.local/state/tether-jumpoint")

rep_app = typer.Typer(help="The Tether representative console: log in with your site user, list what you may "
                           "reach, open a command shell on a jump client or a tunnel through a jumpoint.",
                      no_args_is_help=True, add_completion=False)


class _RepOptions:
    site: Site
    username: str
    password: str


_opts = _RepOptions()


@rep_app.callback()
def rep_main(site: str = typer.Option(..., help="the site's hostname[:port]"),
             user: str = typer.Option(..., "--user", "-u", help="your site user name"),
             pin: Optional[str] = typer.Option(None, help="the site key's pin, sha256/<base64url>"),
             cacert: Optional[Path] = typer.Option(None, help="trust the site through this CA root (PEM)"),
             hosts_file: Optional[Path] = typer.Option(None, help=HOSTS_HELP)):
    """Give the site and how to trust it (--pin or --cacert); the password is read from TETHER_PASSWORD
    or asked for."""
    if not pin and not cacert:
        fail("give the site's --pin or --cacert: the console never trusts an unknown certificate", 2,
              "copy the pin from /login > Jump clients, or the CA root of the site's certificate")
    trust = {"pin": pin} if pin else {"cacert": cacert.read_text()}
    host, port = split_site(site)
    _opts.site = Site(host, port, trust, _hosts(hosts_file))
    _opts.username = user
    password = os.environ.get("TETHER_PASSWORD")
    if password is None:
        import getpass

        password = getpass.getpass(f"Password for {user}: ")
    _opts.password = password


async def _one_time_code(message: str) -> str:
    """The site's RADIUS server asks for more (a one-time code): TETHER_OTP, else asked on the terminal."""
    code = os.environ.get("TETHER_OTP")
    if code is not None:
        return code
    import getpass

    return await asyncio.to_thread(getpass.getpass, f"{message}: ")


def _run_console(body) -> None:
    async def main():
        async with Console(_opts.site, _opts.username, _opts.password, on_challenge=_one_time_code) as console:
            return await body(console)

    try:
        return asyncio.run(main())
    except RequestFailed as e:
        fail(str(e), 3 if e.code == "forbidden" else 4 if e.code in ("not_found", "offline") else 1)
    except Refused as e:
        fail(f"the site refused the login: {e}", 3)
    except (UntrustedCertificate, ssl.SSLError, OSError, WebSocketException) as e:
        fail(describe(e), 1)


@rep_app.command("list")
def rep_list(as_json: bool = typer.Option(False, "--json")):
    """The jump clients and jumpoints you may reach, with their state."""
    result = _run_console(lambda c: c.list())
    if as_json:
        typer.echo(json.dumps({k: result[k] for k in ("jump_clients", "jumpoints")}, indent=1))
        return
    typer.echo("JUMP CLIENTS")
    for j in result["jump_clients"]:
        typer.echo(f"  {j['name']:<24} {'online ' if j['online'] else 'offline'} {j['hostname']:<24} {j['os']}")
    typer.echo("JUMPOINTS")
    for j in result["jumpoints"]:
        typer.echo(f"  {j['name']:<24} {'online ' if j['online'] else 'offline'} {j['hostname']}")


@rep_app.command("shell")
def rep_shell(target: str = typer.Argument(..., help="the jump client's name"), as_json: JsonOpt = False):
    """A command shell on the jump client, in this terminal (or fed from stdin). stdout is the shell's own
    output; with --json the end of the session is a JSON line on stderr (``{"ended": REASON}``)."""
    reason = _run_console(lambda c: c.shell(target))
    typer.echo(json.dumps({"target": target, "ended": reason}) if as_json
               else f"\ntether-rep: session ended ({reason})", err=True)


@rep_app.command("tunnel")
def rep_tunnel(jumpoint: str = typer.Argument(..., help="the jumpoint's name"),
               to: str = typer.Option(..., "--to", help="HOST:PORT on the jumpoint's network"),
               listen: str = typer.Option("127.0.0.1:0", help="the local HOST:PORT to accept connections on"),
               as_json: JsonOpt = False):
    """Forward local TCP connections through the jumpoint to HOST:PORT (until interrupted)."""
    host, port = split_site(to, 0)
    lhost, lport = split_site(listen, 0)
    if not port:
        fail("--to: write HOST:PORT", 2)

    def listening(addr):
        local, remote = netaddr.host_port(addr[0], addr[1]), netaddr.host_port(host, port)
        emit({"listen": local, "jumpoint": jumpoint, "to": remote}, as_json,
             f"listening on {local} -> {jumpoint} -> {remote}")
        sys.stdout.flush()

    _run_console(lambda c: c.forward(jumpoint, host, port, lhost, lport, listening))
