"""The ``tether`` command: one Typer app, one module per area."""

from __future__ import annotations

import typer

from tether import __version__

from .output import JsonOpt, emit
from . import appliance, backup, certs, failover, serve, site, site_data, storage

app = typer.Typer(help=f"Tether {__version__}: the remote-support appliance built for disaster recovery.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


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
storage.register(app)
