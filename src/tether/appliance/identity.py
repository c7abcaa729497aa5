"""The appliance's identity (APPL-01): model, serial number and base software
version, generated once when the data directory is initialised and never
changed afterwards (a backup or snapshot never carries them to other
hardware)."""

from __future__ import annotations

import secrets
import socket
import time

import sqlalchemy as sa

from .store import get_setting, put_setting

BASE_SOFTWARE_VERSION = "6.4.2"
VIRTUAL_MODEL = "TV-VM (virtual appliance)"


def new_identity(model: str | None = None) -> dict:
    return {
        "model": model or VIRTUAL_MODEL,
        "serial": "TTH" + secrets.token_hex(5).upper(),
        "appliance_id": secrets.token_hex(8),
        "created_at": time.time(),
    }


def ensure_identity(engine: sa.Engine, model: str | None = None) -> dict:
    ident = get_setting(engine, "identity")
    if ident is None:
        ident = new_identity(model)
        with engine.begin() as c:
            put_setting(c, "identity", ident)
    return ident


def default_hostname() -> str:
    return socket.gethostname() or "tether.local"
