"""Tether: a self-hosted remote-support appliance built for disaster recovery.

Package map (see docs/architecture.md): ``core`` (data dir, secrets, passwords,
versions, audit), ``appliance`` (the /appliance machine face), ``certs``,
``site`` (the /login site), ``web`` and ``cli`` (thin edges), ``desk`` (the
vendor's support desk).
"""

__version__ = "1.2.1"
