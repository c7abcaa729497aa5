"""Settings sections of the site (SITE-01, SITE-02): one JSON document each
in ``site_settings`` under the section's key: security, jump client
connection settings, failover (stored now, used by failover later), the
inter-appliance pre-shared key, outbound-event delivery, and for Remote
Support sites the public portal, client branding texts and the file store.

The failover settings and the pre-shared key are written without entering
the change log (site/locality.py): each appliance of a pair keeps its own.

The pre-shared key is write-only: stored in the site database so that it
travels with site backups (BK-08) and is never returned (``psk_set``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import BaseModel

from tether.core.errors import NotFound
from tether.core.shapes import public_of

from . import models as M
from . import permissions as P
from .changelog import NOLOG
from .locality import NOT_SYNCED_SETTINGS
from .resources import RS, check_edition
from .tables import site_settings


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    model: type[BaseModel]
    edition: str | None = None
    secrets: tuple[str, ...] = ()
    read: str = P.CONFIG_READ
    write: str = P.CONFIG_WRITE

    @property
    def key(self) -> str:
        return self.slug.replace("-", "_")

    @property
    def public(self) -> type[BaseModel]:
        """The section's document as ``public`` answers it (secrets as ``<field>_set``)."""
        return public_of(self.model, self.secrets)


SECTIONS: dict[str, Section] = {s.slug: s for s in (
    Section("security", "Security settings", M.SecuritySettings),
    Section("jump-clients", "Jump client settings", M.JumpClientSettings),
    Section("failover", "Failover settings", M.FailoverSettings, secrets=("dns_tsig_secret",)),
    Section("inter-appliance-psk", "Inter-appliance pre-shared key", M.PreSharedKey, secrets=("psk",)),
    Section("events", "Outbound event delivery", M.EventSettings),
    Section("public-portal", "Public portal", M.PublicPortal, edition=RS),
    Section("branding", "Client branding and messaging", M.Branding, edition=RS),
    Section("file-store", "File store settings", M.FileStoreSettings, edition=RS),
)}


def section(slug: str, edition: str | None = None) -> Section:
    s = SECTIONS.get(slug)
    if s is None:
        raise NotFound(f"unknown settings section {slug!r}; known: {', '.join(SECTIONS)}")
    check_edition(s.edition, edition, s.title)
    return s


def _raw(conn, s: Section) -> dict:
    row = conn.execute(sa.select(site_settings.c.value).where(site_settings.c.key == s.key)).first()
    return dict(row[0]) if row else {}


def get_model(engine: sa.Engine, s: Section) -> BaseModel:
    with engine.connect() as c:
        return s.model.model_validate(_raw(c, s))


def public(engine: sa.Engine, s: Section) -> dict:
    data = get_model(engine, s).model_dump()
    for f in s.secrets:
        data[f"{f}_set"] = data.pop(f) is not None
    return data


def put(engine: sa.Engine, s: Section, data: object) -> dict:
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if not (k.endswith("_set") and k[:-4] in s.secrets)}
    model = M.parse(s.model, data)
    with engine.begin() as c:
        if s.key in NOT_SYNCED_SETTINGS:
            # this appliance's own place in a pair or cluster: never logged, so never synced, and
            # writable on a backup too (the write fence guards only logged, i.e. replicated, data)
            c = c.execution_options(**{NOLOG: True})
        old = _raw(c, s)
        value = model.model_dump()
        for f in s.secrets:
            if value.get(f) is None:
                value[f] = old.get(f)  # omitted secret: keep the stored one
        values = dict(value=value, updated_at=time.time())
        if c.execute(sa.select(site_settings.c.key).where(site_settings.c.key == s.key)).first():
            c.execute(site_settings.update().where(site_settings.c.key == s.key).values(**values))
        else:
            c.execute(site_settings.insert().values(key=s.key, **values))
    return public(engine, s)
