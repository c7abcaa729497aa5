"""The ``tether`` command: one Typer app, one module per area."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from tether import __version__

from .output import JsonOpt, emit
from .remote import SERVER_NAME_ENV
from . import appliance, backup, certs, drill, failover, kit, maintenance, readiness, serve, site, site_data, storage

app = typer.Typer(help=f"Tether {__version__}: the remote-support appliance built for disaster recovery.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _root(server_name: Annotated[str | None, typer.Option(
        "--server-name", envvar=SERVER_NAME_ENV,
        help="With --url https://ADDRESS: check the appliance's certificate against this host name (and send it "
             "as SNI), e.g. when --cacert is given and the certificate names the host, not the address")] = None):
    """Tether: the remote-support appliance built for disaster recovery."""
    if server_name:
        os.environ[SERVER_NAME_ENV] = server_name  # read by cli/remote.py for every request of this command


@app.command("version")
def version(as_json: JsonOpt = False):
    """Print the software version."""
    emit({"version": __version__}, as_json, __version__)


serve.register(app)
appliance.register(app)
certs.register(app)
site.register(app)
site_data.register(app)
backup.register(app)
failover.register(app)
readiness.register(app)
kit.register(app)
maintenance.register(app)
drill.register(app)
storage.register(app)
