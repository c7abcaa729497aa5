"""``tether-desk``: run the support desk and administer it from a shell.

    tether-desk serve --data DIR [--listen H:P] [--smtp-listen H:P] [--relay H:P] ...
    tether-desk staff add --data DIR NAME --email E [--role engineer]   (password: $TETHER_DESK_PASSWORD or prompt)
    tether-desk customer add --data DIR NAME [--agreement-from D --agreement-to D] [--rep "Name <email>"]
    tether-desk token create --data DIR NAME --customer ID --contact EMAIL
    tether-desk jobs run --data DIR [--now 2027-01-05T10:00-06:00] [--relay H:P]

Data goes to stdout (JSON with --json where offered), messages to stderr.
Exit codes follow tether.core.errors: 0 ok, 2 invalid input, 3 refused,
4 not found, 5 conflict, 1 anything else.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from email.utils import parseaddr
from pathlib import Path
from typing import Optional

import typer

from tether.core import netaddr
from tether.core.errors import Invalid, TetherError

from .clock import FixedClock, parse_instant
from .context import Desk, DeskConfig

app = typer.Typer(help="The Tether support desk.", no_args_is_help=True, add_completion=False)
staff_app = typer.Typer(help="Desk staff accounts.", no_args_is_help=True)
customer_app = typer.Typer(help="Customers, agreements and representatives.", no_args_is_help=True)
token_app = typer.Typer(help="Appliance API tokens (DESK-09).", no_args_is_help=True)
jobs_app = typer.Typer(help="Time-based jobs (auto-close, SLA, notices, invoices).", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(customer_app, name="customer")
app.add_typer(token_app, name="token")
app.add_typer(jobs_app, name="jobs")

DATA = typer.Option(..., "--data", help="the desk's data directory")
DB = typer.Option(None, "--db", help="database URL (default: sqlite in the data directory)")
JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout (these commands print JSON "
                    "either way, except token create and serve)")


def _hostport(text: str | None, field: str) -> tuple[str, int] | None:
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid(f"{text!r} is not HOST:PORT", field=field)
    return host.strip("[]"), int(port)


def _fail(exc: TetherError) -> None:
    typer.echo(f"Error: {exc.message}", err=True)
    if exc.hint:
        typer.echo(f"Try: {exc.hint}", err=True)
    raise typer.Exit(exc.exit_code)


def _desk(data: Path, db: str | None, **kw) -> Desk:
    return Desk(DeskConfig(data_dir=data, db_url=db, **kw))


@app.command()
def serve(
    data: Path = DATA, db: Optional[str] = DB,
    listen: str = typer.Option("127.0.0.1:8750", help="HOST:PORT for HTTP"),
    smtp_listen: Optional[str] = typer.Option(None, help="HOST:PORT for incoming mail (SMTP)"),
    relay: Optional[str] = typer.Option(None, help="HOST:PORT of the SMTP relay for outgoing mail"),
    mail_from: str = typer.Option("support@tether-desk.invalid", help="From address of outgoing mail"),
    base_url: Optional[str] = typer.Option(None, help="public URL of the desk, used in mail"),
    auto_close_days: float = typer.Option(7.0, help="days after which waiting incidents close"),
    close_notice_days: float = typer.Option(2.0, help="days of notice before an automatic close"),
    max_attachment_bytes: int = typer.Option(10 * 1024 * 1024, help="size limit per attachment"),
    retired_policy: str = typer.Option("flag", help="incidents on retired versions: flag or refuse"),
    catalog: Optional[Path] = typer.Option(None, help="YAML release catalog replacing the built-in one"),
    clock_file: Optional[Path] = typer.Option(None, help="TESTING ONLY: read the current time from this file"),
    jobs_interval: float = typer.Option(60.0, help="seconds between job runs (0: only on demand)"),
    tls_cert: Optional[Path] = typer.Option(None, help="PEM certificate for HTTPS"),
    tls_key: Optional[Path] = typer.Option(None, help="PEM key for HTTPS"),
    as_json: bool = JSON,
) -> None:
    """Run the desk: HTTP (pages and API) and, with --smtp-listen, incoming mail."""
    import uvicorn

    from .app import create_app

    try:
        host, port = _hostport(listen, "listen")
        if retired_policy not in ("flag", "refuse"):
            raise Invalid("--retired-policy must be flag or refuse", field="retired_policy")
        scheme = "https" if tls_cert else "http"
        desk = _desk(data, db, relay=_hostport(relay, "relay"), mail_from=mail_from,
                     base_url=base_url or netaddr.url(scheme, host, port), auto_close_days=auto_close_days,
                     close_notice_days=close_notice_days, max_attachment_bytes=max_attachment_bytes,
                     retired_policy=retired_policy, catalog_file=catalog, clock_file=clock_file)
        smtp = _hostport(smtp_listen, "smtp_listen")
    except TetherError as exc:
        _fail(exc)
    if clock_file:
        typer.echo(f"WARNING: test clock in use; the time is read from {clock_file}", err=True)
    application = create_app(desk, smtp_listen=smtp, jobs_interval=jobs_interval)
    if as_json:  # before the server starts: where it will listen
        typer.echo(json.dumps({"listen": netaddr.host_port(host, port), "url": desk.config.base_url}))
    uvicorn.run(application, host=host, port=port, log_level="warning",
                ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None)


@staff_app.command("add")
def staff_add(name: str, email: str = typer.Option(...), role: str = typer.Option("staff"),
              data: Path = DATA, db: Optional[str] = DB, as_json: bool = JSON) -> None:
    """Add a staff member (role staff, engineer or supervisor)."""
    from .auth import add_staff

    password = os.environ.get("TETHER_DESK_PASSWORD") or typer.prompt("Password", hide_input=True,
                                                                      confirmation_prompt=True)
    try:
        typer.echo(json.dumps(add_staff(_desk(data, db), name, password, email=email, role=role)))
    except TetherError as exc:
        _fail(exc)


@customer_app.command("add")
def customer_add(name: str, data: Path = DATA, db: Optional[str] = DB,
                 country: str = typer.Option("US"),
                 agreement_from: Optional[str] = typer.Option(None, help="first day of the agreement"),
                 agreement_to: Optional[str] = typer.Option(None, help="last day of the agreement"),
                 rep: list[str] = typer.Option([], help='a representative, "Name <email>" (repeatable)'),
                 as_json: bool = JSON) -> None:
    """Add a customer, optionally with an agreement and representatives."""
    from . import customers

    try:
        desk = _desk(data, db)
        cust = customers.add_customer(desk, name=name, country=country)
        if agreement_from or agreement_to:
            try:
                starts, ends = date.fromisoformat(agreement_from or ""), date.fromisoformat(agreement_to or "")
            except ValueError:
                raise Invalid("agreement dates must be YYYY-MM-DD", field="agreement_from") from None
            customers.add_agreement(desk, cust["id"], starts=starts, ends=ends)
        for r in rep:
            rname, email = parseaddr(r)
            customers.add_representative(desk, cust["id"], name=rname or email, email=email)
        typer.echo(json.dumps(customers.get_customer(desk, cust["id"]), default=str))
    except TetherError as exc:
        _fail(exc)


@token_app.command("create")
def token_create(name: str, customer: int = typer.Option(...), contact: str = typer.Option(...),
                 data: Path = DATA, db: Optional[str] = DB, as_json: bool = JSON) -> None:
    """Create an appliance token; prints it once (store it in /appliance)."""
    from .auth import create_token

    try:
        secret, _ = create_token(_desk(data, db), name=name, customer_id=customer, contact_email=contact.lower())
    except TetherError as exc:
        _fail(exc)
    typer.echo(json.dumps({"name": name, "customer": customer, "token": secret}) if as_json else secret)


@jobs_app.command("run")
def jobs_run(data: Path = DATA, db: Optional[str] = DB,
             now: Optional[str] = typer.Option(None, help="ISO 8601 instant to run at (default: the real time)"),
             relay: Optional[str] = typer.Option(None, help="HOST:PORT of the SMTP relay"),
             auto_close_days: float = typer.Option(7.0), close_notice_days: float = typer.Option(2.0),
             catalog: Optional[Path] = typer.Option(None), as_json: bool = JSON) -> None:
    """Run every time-based job once and print what it did (JSON)."""
    from .jobs import run_jobs

    try:
        clock = FixedClock(parse_instant(now, field="now")) if now else None
        desk = Desk(DeskConfig(data_dir=data, db_url=db, relay=_hostport(relay, "relay"),
                               auto_close_days=auto_close_days, close_notice_days=close_notice_days,
                               catalog_file=catalog), clock=clock)
        typer.echo(json.dumps(run_jobs(desk)))
    except TetherError as exc:
        _fail(exc)


def main() -> None:  # pragma: no cover
    app(prog_name="tether-desk")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
