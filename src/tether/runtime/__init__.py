"""The running appliance (DESIGN: runtime/). What lives here:

    appliance   the composition root (``Appliance``) and its lifecycle
    provision   ``initialize`` (a fresh data directory), ``open_offline`` (the lock held)
    slot        the site slot: the only code that opens, installs, updates, restores, swaps or resets the site
    role        the role (none, primary, backup) and generation, durable under <data>/failover/, and the gates
    jobs        the one job runner (interval, continuous, one-shot; role-gated)
    listeners   the HTTPS listeners and the TLS context each presents
    recover     rebuild an appliance from its recovery kit (``tether recover``, DR-05)

Domain packages never import this package; they declare small ports
(``typing.Protocol``) that the ``Appliance`` satisfies or hands them.
"""

from __future__ import annotations

from tether.core.errors import Conflict
from tether.core.paths import DataDir

from .appliance import Appliance, ClientCounts
from .provision import initialize, locked, open_offline


def open_appliance(path: str) -> Appliance:
    return Appliance(DataDir.at(path))


__all__ = ["Appliance", "ClientCounts", "Conflict", "initialize", "locked", "open_appliance", "open_offline"]
