"""Certificate assignments (CERT-06): which certificate each of the
appliance's IP addresses presents.

Stored in appliance.db as the JSON setting ``cert_assignments``::

    {"<IP address, normalised>": <certificate id>, ...}

An address without an entry presents the built-in certificate, so the
built-in one is never stored here. Every listener bound to an address (any
port) presents that address's certificate. Addresses are normalised by
``ipaddress`` (``2001:DB8::1`` and ``2001:db8:0::1`` are one key). This module
reads and writes the mapping only; checking and applying it is
``service.py``'s and the runtime's job.
"""

from __future__ import annotations

import ipaddress
from typing import Mapping

import sqlalchemy as sa

from tether.appliance.store import get_setting, put_setting
from tether.core.errors import Invalid

SETTING = "cert_assignments"


def normalize(address: str) -> str:
    try:
        return ipaddress.ip_address(str(address).strip().strip("[]")).compressed
    except ValueError:
        raise Invalid(f"{address!r} is not an IP address", field="address",
                      hint="give one of the appliance's IP addresses, e.g. 192.0.2.10") from None


def host_key(host: str) -> str:
    """The key a listener's host is looked up under (a name is kept as given)."""
    try:
        return normalize(host)
    except Invalid:
        return host


def load(engine: sa.Engine) -> dict[str, int]:
    raw = get_setting(engine, SETTING, {}) or {}
    return {str(k): int(v) for k, v in raw.items()}


def save(conn: sa.Connection, mapping: Mapping[str, int]) -> None:
    put_setting(conn, SETTING, {k: int(v) for k, v in sorted(mapping.items())})


def by_certificate(mapping: Mapping[str, int]) -> dict[int, list[str]]:
    """Certificate id -> its assigned addresses, sorted."""
    out: dict[int, list[str]] = {}
    for address, cert_id in sorted(mapping.items()):
        out.setdefault(cert_id, []).append(address)
    return out
