"""The named things of the site's configuration (SITE-01, SITE-02) and one
service that lists, reads, creates, replaces and deletes any of them.

Each ``Kind`` names its table, input model, permissions, write-only secret
fields, child lists (stored as rows of a child table) and edition. The
service checks references (a clear 422 naming the field), name clashes
(409) and use by other rows before a delete (409), all in one transaction;
the change log captures every row written (see ``changelog``)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from tether.core.errors import Conflict, Invalid, NotFound
from tether.core.shapes import of_table

from . import config_tables as T
from . import models as M
from . import permissions as P
from .tables import metadata

RS = "remote-support"


class WrongEdition(NotFound):
    code = "wrong_edition"


@dataclass(frozen=True)
class Child:
    field: str
    table: sa.Table
    parent: str  # column naming the parent
    ordered: bool = True  # a "position" column keeps the list order


@dataclass(frozen=True)
class Kind:
    slug: str
    title: str
    table: sa.Table
    model: type[BaseModel]
    read: str = P.CONFIG_READ
    write: str = P.CONFIG_WRITE
    secrets: tuple[str, ...] = ()
    binary: tuple[str, ...] = ()  # secrets sent as base64, stored as bytes
    children: tuple[Child, ...] = ()
    edition: str | None = None
    columns: tuple[str, ...] = ("name",)

    @property
    def key(self) -> str:
        return self.table.primary_key.columns.values()[0].name

    @property
    def entry(self) -> type[BaseModel]:
        """An entry as ``ConfigStore`` answers it: its columns (secrets as ``<field>_set``) and child lists."""
        return of_table(self.table, f"{self.model.__name__}Entry", secrets=self.secrets,
                        extra=tuple((ch.field, list[dict[str, Any]]) for ch in self.children))


KINDS: dict[str, Kind] = {k.slug: k for k in (
    Kind("teams", "Teams", T.teams, M.Team, P.USERS_MANAGE, P.USERS_MANAGE,
         children=(Child("members", T.team_members, "team", ordered=False),), columns=("name", "description")),
    Kind("security-providers", "Security providers", T.security_providers, M.SecurityProvider,
         secrets=("bind_password", "radius_secret", "keytab"), binary=("keytab",),
         columns=("name", "kind", "enabled", "priority", "host", "realm")),
    Kind("group-policies", "Group policies", T.group_policies, M.GroupPolicy,
         children=(Child("members", T.group_policy_members, "policy"),),
         columns=("name", "priority", "permissions", "description")),
    Kind("jumpoints", "Jumpoints", T.jumpoints, M.Jumpoint,
         columns=("name", "hostname", "enabled", "protocols", "max_sessions")),
    Kind("jump-client-groups", "Jump client groups", T.jump_client_groups, M.JumpClientGroup,
         columns=("name", "description", "allow_unattended", "jumpoint")),
    Kind("jump-clients", "Jump clients", T.jump_clients, M.JumpClient,
         columns=("name", "hostname", "group_name", "os", "public_ip", "last_seen_at")),
    Kind("languages", "Languages", T.languages, M.Language, columns=("name", "label", "enabled")),
    Kind("event-targets", "Outbound events", T.event_targets, M.EventTarget, secrets=("hmac_secret",),
         columns=("name", "kind", "enabled", "url", "recipients", "event_types")),
    Kind("canned-messages", "Canned messages", T.canned_messages, M.CannedMessage, edition=RS,
         columns=("name", "category", "team", "body")),
    Kind("exit-surveys", "Exit surveys", T.exit_surveys, M.ExitSurvey, edition=RS,
         children=(Child("questions", T.exit_survey_questions, "survey"),),
         columns=("name", "audience", "enabled", "title")),
    Kind("presentations", "Presentations", T.presentations, M.Presentation, edition=RS,
         columns=("name", "title", "presenter", "scheduled_at", "duration_minutes", "status")),
)}

# references checked before writing, so a dangling one is a 422 naming the field
REFS: dict[str, tuple[tuple[str, sa.Table, str], ...]] = {
    "teams": (("members.username", metadata.tables["users"], "username"),),
    "group-policies": (("members.username", metadata.tables["users"], "username"),
                       ("members.team", T.teams, "name"), ("members.provider", T.security_providers, "name")),
    "jump-client-groups": (("jumpoint", T.jumpoints, "name"),),
    "jump-clients": (("group_name", T.jump_client_groups, "name"),),
    "canned-messages": (("team", T.teams, "name"),),
    "presentations": (("presenter", metadata.tables["users"], "username"), ("file", T.store_files, "name")),
}


def kind(slug: str, edition: str | None = None) -> Kind:
    k = KINDS.get(slug)
    if k is None:
        raise NotFound(f"unknown configuration kind {slug!r}; known: {', '.join(KINDS)}")
    check_edition(k.edition, edition, k.title)
    return k


def check_edition(needed: str | None, edition: str | None, what: str) -> None:
    if needed and edition and edition != needed:
        raise WrongEdition(f"{what} exist only on {needed} sites; this site is {edition}",
                           hint="privileged-remote-access sites have no canned messages, branding, exit surveys, "
                                "public portal, file store or presentations")


def referrers(conn: sa.Connection, table: sa.Table, value, skip: set[str] = frozenset()) -> list[str]:
    """Rows of other tables that point at ``table``'s row with key ``value`` (as 'table:count')."""
    found = []
    for t in metadata.sorted_tables:
        if t.name in skip:
            continue
        for fk in t.foreign_keys:
            if fk.column.table is table:
                n = conn.execute(sa.select(sa.func.count()).select_from(t).where(fk.parent == value)).scalar_one()
                if n:
                    found.append(f"{t.name} ({n})")
    return found


class ConfigStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # --- reading -----------------------------------------------------------------------------
    def _public(self, conn, k: Kind, row) -> dict:
        out = {}
        for col in k.table.columns:
            if col.name in k.secrets:
                out[f"{col.name}_set"] = row[col.name] is not None
            else:
                out[col.name] = row[col.name]
        for ch in k.children:
            t = ch.table
            q = sa.select(t).where(t.c[ch.parent] == row[k.key])
            q = q.order_by(t.c.position) if ch.ordered else q.order_by(*t.primary_key.columns)
            drop = {ch.parent, "position"}
            out[ch.field] = [{c: v for c, v in r.items() if c not in drop and v is not None}
                             for r in conn.execute(q).mappings()]
        return out

    def list(self, k: Kind, limit: int = 1000, offset: int = 0) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(k.table).order_by(k.table.c[k.key]).limit(limit).offset(offset)).mappings()
            return [self._public(c, k, r) for r in rows.all()]

    def get(self, k: Kind, name: str) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(k.table).where(k.table.c[k.key] == name)).mappings().first()
            if row is None:
                raise NotFound(f"no {k.title.lower()} entry named {name!r}")
            return self._public(c, k, row)

    # --- writing -----------------------------------------------------------------------------
    def validate(self, k: Kind, data: object, name: str | None = None) -> BaseModel:
        if not isinstance(data, dict):
            raise Invalid("send a JSON object")
        data = {f: v for f, v in data.items() if f not in ("created_at",) and not
                (f.endswith("_set") and f[:-4] in k.secrets)}
        if name is not None:
            if data.setdefault(k.key, name) != name:
                raise Invalid(f"{k.key}: the {k.key} cannot be changed (delete and create instead)", field=k.key)
        model = M.parse(k.model, data)
        for path, table, col in REFS.get(k.slug, ()):
            top, _, sub = path.partition(".")
            values = [(top, getattr(model, top))] if not sub else \
                [(f"{top}.{i}.{sub}", getattr(item, sub)) for i, item in enumerate(getattr(model, top))]
            with self.engine.connect() as c:
                for fld, v in values:
                    if v is not None and c.execute(sa.select(table.c[col]).where(table.c[col] == v)).first() is None:
                        raise Invalid(f"{fld}: no {table.name.rstrip('s').replace('_', ' ')} named {v!r}", field=fld)
        return model

    def _values(self, k: Kind, model: BaseModel, old: dict | None) -> dict:
        child_fields = {ch.field for ch in k.children}
        values = {f: v for f, v in model.model_dump().items() if f not in child_fields}
        for s in k.secrets:
            if values.get(s) is None and old is not None:
                values[s] = old[s]  # omitted secret: keep the stored one
            elif s in k.binary and values.get(s) is not None:
                try:
                    values[s] = base64.b64decode(values[s], validate=True)
                except ValueError:
                    raise Invalid(f"{s}: send the file as base64", field=s) from None
        return values

    def _write_children(self, c, k: Kind, name: str, model: BaseModel, replace: bool) -> None:
        for ch in k.children:
            t = ch.table
            if replace:
                c.execute(t.delete().where(t.c[ch.parent] == name))
            items = getattr(model, ch.field)
            if not ch.ordered:
                seen = set()
                for i, item in enumerate(items):
                    key = item.model_dump().get("username")
                    if key in seen:
                        raise Invalid(f"{ch.field}.{i}: listed twice", field=f"{ch.field}.{i}")
                    seen.add(key)
            for i, item in enumerate(items):
                row = {ch.parent: name, **item.model_dump()}
                if ch.ordered:
                    row["position"] = i
                c.execute(t.insert().values(**row))

    def create(self, k: Kind, data: object) -> dict:
        model = self.validate(k, data)
        name = getattr(model, k.key)
        values = self._values(k, model, None)
        for s in k.secrets:
            if k.slug == "event-targets" and values.get(s) is None and values.get("kind") == "webhook":
                raise Invalid("hmac_secret: a webhook needs an HMAC secret (16+ characters)", field="hmac_secret")
        values["created_at"] = time.time()
        with self.engine.begin() as c:
            if c.execute(sa.select(k.table.c[k.key]).where(k.table.c[k.key] == name)).first():
                raise Conflict(f"a {k.title.lower()} entry named {name!r} already exists", field=k.key)
            c.execute(k.table.insert().values(**values))
            self._write_children(c, k, name, model, replace=False)
        return self.get(k, name)

    def update(self, k: Kind, name: str, data: object) -> dict:
        model = self.validate(k, data, name)
        with self.engine.begin() as c:
            old = c.execute(sa.select(k.table).where(k.table.c[k.key] == name)).mappings().first()
            if old is None:
                raise NotFound(f"no {k.title.lower()} entry named {name!r}")
            values = self._values(k, model, dict(old))
            values.pop(k.key)
            c.execute(k.table.update().where(k.table.c[k.key] == name).values(**values))
            self._write_children(c, k, name, model, replace=True)
        return self.get(k, name)

    def delete(self, k: Kind, name: str) -> dict:
        with self.engine.begin() as c:
            row = c.execute(sa.select(k.table.c[k.key]).where(k.table.c[k.key] == name)).first()
            if row is None:
                raise NotFound(f"no {k.title.lower()} entry named {name!r}")
            used = referrers(c, k.table, name, {ch.table.name for ch in k.children})
            if used:
                raise Conflict(f"{name!r} is still used by {', '.join(used)}", hint="remove those references first")
            for ch in k.children:
                c.execute(ch.table.delete().where(ch.table.c[ch.parent] == name))
            c.execute(k.table.delete().where(k.table.c[k.key] == name))
        return {k.key: name, "deleted": True}
