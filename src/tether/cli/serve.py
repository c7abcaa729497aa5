"""``tether init`` and ``tether serve``: make a fresh appliance in a data
directory and run it in the foreground until SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tether.core.paths import DataDir
from tether.core import netaddr

from .output import JsonOpt, emit, errors, fail

DataOpt = Annotated[Path, typer.Option("--data", envvar="TETHER_DATA", help="The appliance's data directory")]
TrustOpt = Annotated[list[Path] | None, typer.Option(
    "--trust-vendor-key", help="Vendor public key (PEM) trusted for site packages; set once, at initialisation")]


def init_data(data: Path, trust: list[Path] | None, model: str | None = None) -> DataDir:
    from tether.backup.appliance_snapshot import recover
    from tether.runtime import initialize

    recover(Path(data).resolve())  # a snapshot restore a crash interrupted
    d = DataDir.at(data)
    _check_trust(d, trust)
    if d.initialized:
        return d
    initialize(d, [p.read_bytes() for p in (trust or [])], model)
    return d


def _check_trust(d: DataDir, trust: list[Path] | None) -> None:
    if d.initialized and trust:
        fail("trusted vendor keys are set only when the appliance is initialised", 2,
             "factory-reset the appliance or use a new --data directory")


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init_cmd(data: DataOpt, trust_vendor_key: TrustOpt = None,
                 model: Annotated[str | None, typer.Option(help="Hardware model to record")] = None,
                 site_db_url: Annotated[str | None, typer.Option(
                     envvar="TETHER_SITE_DB_URL", help="Host the site database on PostgreSQL: "
                     "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB (an empty database); default SQLite")] = None,
                 as_json: JsonOpt = False):
        """Make a fresh appliance (identity, built-in certificate, admin / password) in DATA."""
        from tether.runtime import locked, open_offline

        with errors():
            d = DataDir.at(data)
            _check_trust(d, trust_vendor_key)  # before the lock: the mistake is the arguments, not the state
            d.root.mkdir(parents=True, exist_ok=True)
            with locked(d):
                init_data(data, trust_vendor_key, model)
            with open_offline(d) as a:
                if site_db_url:
                    a.set_site_db_url(site_db_url)
                b = a.status_basics()
        emit({"serial_number": b["serial_number"], "model": b["model"], "data": str(d.root)}, as_json,
             f"Appliance {b['serial_number']} ({b['model']}) initialised in {d.root}")

    @app.command("serve")
    def serve_cmd(data: DataOpt,
                  listen: Annotated[list[str], typer.Option("--listen", help="HOST:PORT, repeatable (port 0: any)")],
                  trust_vendor_key: TrustOpt = None,
                  ready_file: Annotated[Path | None, typer.Option(help="Write the listening addresses here as JSON")] = None,
                  isolated: Annotated[bool, typer.Option(
                      "--isolated", help="A drill's scratch copy: no syslog, outbound events or mail, reminders, "
                      "support desk or failover peer (refused on a data directory in a failover pair)")] = False,
                  as_json: JsonOpt = False):
        """Run the appliance in the foreground (HTTPS on every --listen address) until SIGTERM."""
        from tether.runtime import Appliance
        from tether.web.server import event_loop_factory, parse_listen, serve_forever

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)
        for noisy in ("httpx", "httpcore", "alembic"):  # one line per peer request / migration step
            logging.getLogger(noisy).setLevel(logging.WARNING)
        with errors():
            try:
                listens = [parse_listen(x) for x in listen]
            except ValueError as exc:
                fail(str(exc), 2)
            from tether.runtime import locked

            d = DataDir.at(data)
            d.root.mkdir(parents=True, exist_ok=True)
            hold = locked(d)
            hold.__enter__()  # held for the life of the process, initialisation included
            init_data(data, trust_vendor_key)
            if isolated and d.pair_file.exists():
                fail(f"{d.root} is in a failover pair: an isolated copy must not be", 2,
                     "use a scratch data directory restored from a backup (tether drill does)")
            appliance = Appliance(d, isolated=isolated)
            cert_path = d.builtin_cert
            cert_pem = appliance.publish_builtin_cert()

        def ready(addrs):
            fp = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA256()).hex(":")
            info = {"listen": [netaddr.host_port(h, p) for h, p in addrs],
                    "urls": [netaddr.url("https", h, p) for h, p in addrs],
                    "builtin_cert": str(cert_path), "builtin_cert_sha256": fp, "pid": __import__("os").getpid()}
            base = info["urls"][0]
            if as_json:  # one line, once every listener is up
                sys.stdout.write(json.dumps({**info, "appliance": f"{base}/appliance", "login": f"{base}/login",
                                             "api": f"{base}/api/openapi.json"}, sort_keys=True) + "\n")
            else:
                sys.stdout.write(f"Tether appliance {appliance.identity['serial']} is serving:\n"
                                 f"  /appliance  {base}/appliance\n  /login      {base}/login\n"
                                 f"  API         {base}/api/openapi.json\n"
                                 f"  certificate {cert_path} (SHA-256 {fp})\n")
            sys.stdout.flush()
            if ready_file:
                tmp = ready_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(info))
                tmp.rename(ready_file)

        try:
            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                runner.run(serve_forever(appliance, listens, ready))
        except OSError as exc:
            fail(f"cannot listen: {exc}", 1, "choose a free address:port with --listen")


