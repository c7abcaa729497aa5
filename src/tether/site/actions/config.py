"""Site configuration as administrators read and change it (SITE-01,
SITE-02): every configuration kind (``resources.KINDS``: teams, jumpoints,
group policies ...), the settings sections (``sections.SECTIONS``), the
site settings document and the client branding logo.

A kind or section names the permission that reads it and the one that
changes it, and the edition it belongs to; ``kind`` and ``section`` check
both (in that order: an unknown name is 404, a missing permission 403, an
entry of the other edition 404) and every other function starts with one
of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

from .. import config as site_config
from .. import permissions as P
from .. import resources as R
from .. import sections as S
from ..permissions import Actor

if TYPE_CHECKING:
    from ..site import Site


# --- configuration kinds -------------------------------------------------------------------------
def kind(site: Site, actor: Actor, slug: str, *, write: bool = False) -> R.Kind:
    k = R.kind(slug)
    P.require(actor.granted, k.write if write else k.read)
    R.check_edition(k.edition, site.edition, k.title)
    return k


def list_entries(site: Site, actor: Actor, slug: str, limit: int = 1000, offset: int = 0) -> list[dict]:
    return site.config.list(kind(site, actor, slug), limit, offset)


def get_entry(site: Site, actor: Actor, slug: str, name: str) -> dict:
    """One entry; secrets only as ``<field>_set``."""
    return site.config.get(kind(site, actor, slug), name)


def create_entry(site: Site, actor: Actor, source_ip: str | None, slug: str, body: object) -> dict:
    k = kind(site, actor, slug, write=True)
    row = site.config.create(k, body)
    site.audit.record(actor.name, f"config.{slug}.create", str(row[k.key]), source_ip)
    return row


def update_entry(site: Site, actor: Actor, source_ip: str | None, slug: str, name: str, body: object) -> dict:
    """Replace an entry; omitted secrets are kept."""
    k = kind(site, actor, slug, write=True)
    row = site.config.update(k, name, body)
    site.audit.record(actor.name, f"config.{slug}.update", name, source_ip)
    return row


def delete_entry(site: Site, actor: Actor, source_ip: str | None, slug: str, name: str) -> dict:
    """Refused (409) while another entry refers to it."""
    k = kind(site, actor, slug, write=True)
    gone = site.config.delete(k, name)
    site.audit.record(actor.name, f"config.{slug}.delete", name, source_ip)
    return gone


def test_provider(site: Site, actor: Actor, source_ip: str | None, name: str, body: object) -> dict:
    """A security provider's "test" action: ask it about a username and password and report each step
    (connect, TLS, bind, search, user bind, groups) and the group policies the user would get. Needs
    the permission that changes providers (it sends credentials to the directory); logs nothing secret."""
    from tether.clients.directory import Directory
    from tether.core.validate import parse_model

    kind(site, actor, "security-providers", write=True)
    creds = parse_model(ProviderTestBody, body)
    out = site.authn.check_provider(name, creds.username, creds.password)
    if out["user"] is not None:
        out["group_policies"] = Directory(site.engine).group_policies(out["user"]["username"], name,
                                                                     out["user"]["groups"])
    site.audit.record(actor.name, "config.security-providers.test", name, source_ip,
                      {"username": creds.username, "outcome": out["outcome"]})
    return out


class ProviderTestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=256)]
    password: Annotated[str, Field(max_length=1024)]


# --- settings sections -----------------------------------------------------------------------------
def section(site: Site, actor: Actor, slug: str, *, write: bool = False) -> S.Section:
    s = S.section(slug)
    P.require(actor.granted, s.write if write else s.read)
    R.check_edition(s.edition, site.edition, s.title)
    return s


def read_section(site: Site, actor: Actor, slug: str) -> dict:
    """The section's document; secrets only as ``<field>_set``."""
    return S.public(site.engine, section(site, actor, slug))


def put_section(site: Site, actor: Actor, source_ip: str | None, slug: str, body: object) -> dict:
    """Replace the section's document; omitted secrets are kept."""
    out = S.put(site.engine, section(site, actor, slug, write=True), body)
    site.audit.record(actor.name, f"config.settings.{slug}.update", slug, source_ip)
    return out


# --- the site settings document and the branding logo ------------------------------------------------
def site_settings(site: Site, actor: Actor) -> dict:
    P.require(actor.granted, P.CONFIG_READ)
    return site_config.get(site.engine).model_dump()


def put_site_settings(site: Site, actor: Actor, source_ip: str | None, body: object) -> dict:
    P.require(actor.granted, P.CONFIG_WRITE)
    model = site_config.put(site.engine, body)
    site.audit.record(actor.name, "config.site.update", "site", source_ip)
    return model.model_dump()


def logo(site: Site, actor: Actor) -> tuple[bytes, str]:
    """(image bytes, media type) of the client branding logo (Remote Support)."""
    section(site, actor, "branding")
    return site.files.logo()


def put_logo(site: Site, actor: Actor, source_ip: str | None, data: bytes) -> dict:
    """A PNG, JPEG or GIF of at most ``filestore.LOGO_MAX`` bytes (a face checks ``section(..., "branding",
    write=True)`` before reading the upload)."""
    section(site, actor, "branding", write=True)
    out = site.files.put_logo(data)
    site.audit.record(actor.name, "config.branding.logo", "logo", source_ip, {"sha256": out["sha256"]})
    return out
