"""The site's record of deployed clients (CL-01): installer tokens
(deployments), client identities and their revocation, the jump clients and
jumpoints they stand for, and what a representative may reach. Works on the
site database only; the live connections are the hub's."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

import sqlalchemy as sa

from tether.core.errors import Conflict, Invalid, NotFound, Unauthorized
from tether.site import client_tables as C
from tether.site import config_tables as T
from tether.site.tables import users

from . import trust as trust_mod

KINDS = ("jump", "jumpoint")
DEFAULT_TTL = 7 * 86400
MAX_TTL = 365 * 86400
_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
SEEN_BATCH = 500  # jump client names in one IN list of the last-seen writes


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _item_name(hostname: str) -> str:
    base = _NAME_RE.sub("-", hostname).strip("-._")[:56] or "client"
    return base if base[0].isalnum() else "c" + base


class Directory:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # --- deployments -----------------------------------------------------------------------------
    def create_deployment(self, kind: str, target: str | None, pin: str | None, actor: str,
                          ttl_seconds: int = DEFAULT_TTL) -> dict:
        """A one-time installer token; the answer is the only time the token is shown."""
        if kind not in KINDS:
            raise Invalid(f"kind: one of {', '.join(KINDS)}", field="kind")
        if not isinstance(ttl_seconds, int) or not 60 <= ttl_seconds <= MAX_TTL:
            raise Invalid(f"ttl_seconds: between 60 and {MAX_TTL}", field="ttl_seconds")
        if pin is not None and not trust_mod.valid_pin(pin):
            raise Invalid("pin: write sha256/<base64url of the SHA-256 of the public key>", field="pin")
        with self.engine.begin() as c:
            if kind == "jumpoint":
                if not target or not c.execute(sa.select(T.jumpoints.c.name).where(T.jumpoints.c.name == target)).first():
                    raise Invalid("target: the name of a configured jumpoint (create it under Jumpoints first)",
                                  field="target")
            elif target and not c.execute(sa.select(T.jump_client_groups.c.name)
                                          .where(T.jump_client_groups.c.name == target)).first():
                raise Invalid(f"target: no jump client group {target!r}", field="target")
            dep_id = secrets.token_hex(8)
            token = f"{dep_id}.{secrets.token_urlsafe(32)}"
            if pin:
                token += "." + pin[len(trust_mod.PREFIX):]
            now = time.time()
            row = dict(id=dep_id, kind=kind, target=target or None, token_sha256=_sha(token),
                       trust={"pin": pin} if pin else {"root": True}, created_by=actor, created_at=now,
                       expires_at=now + ttl_seconds)
            c.execute(C.client_deployments.insert().values(**row))
        return {**_public_deployment(row), "token": token}

    def deployments(self) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(C.client_deployments).order_by(C.client_deployments.c.created_at.desc()))
            return [_public_deployment(dict(r)) for r in rows.mappings()]

    def delete_deployment(self, dep_id: str) -> None:
        """Withdraw an unused deployment; a used one stays as the record of its installation."""
        d = C.client_deployments
        with self.engine.begin() as c:
            row = c.execute(sa.select(d.c.used_at).where(d.c.id == dep_id)).first()
            if row is None:
                raise NotFound(f"no deployment {dep_id!r}")
            if row[0] is not None:
                raise Conflict(f"deployment {dep_id} was used; it stays as the record of that installation",
                               hint="revoke the client it installed instead")
            c.execute(d.delete().where(d.c.id == dep_id))

    def redeem(self, token: str, kind: str, hostname: str, os_name: str, public_ip: str | None) -> dict:
        """Register a client with a one-time installer token; a token works once, before it expires."""
        if not isinstance(token, str) or not 10 <= len(token) <= 256:
            raise Invalid("token: the installer token from /login", field="token")
        if kind not in KINDS:
            raise Invalid(f"kind: one of {', '.join(KINDS)}", field="kind")
        if not isinstance(hostname, str) or not 1 <= len(hostname) <= 253:
            raise Invalid("hostname: 1-253 characters", field="hostname")
        os_name = (os_name if isinstance(os_name, str) else "")[:64] or "unknown"
        d = C.client_deployments
        now = time.time()
        with self.engine.begin() as c:
            dep = c.execute(sa.select(d).where(d.c.token_sha256 == _sha(token))).mappings().first()
            if dep is None:
                raise Unauthorized("unknown installer token", hint="create a deployment in /login > Jump clients")
            if dep["used_at"] is not None:
                raise Unauthorized("this installer token has already been used; tokens work once",
                                   hint="create a new deployment in /login")
            if dep["expires_at"] < now:
                raise Unauthorized("this installer token has expired", hint="create a new deployment in /login")
            if dep["kind"] != kind:
                raise Conflict(f"this token deploys a {dep['kind']}, not a {kind}")
            if kind == "jump":
                name = self._free_name(c, _item_name(hostname))
                c.execute(T.jump_clients.insert().values(
                    name=name, hostname=hostname, group_name=dep["target"], os=os_name, public_ip=public_ip,
                    comments="", last_seen_at=now, created_at=now))
            else:
                name = dep["target"]
                if not c.execute(sa.select(T.jumpoints.c.name).where(T.jumpoints.c.name == name)).first():
                    raise Conflict(f"jumpoint {name!r} no longer exists")
            client_id, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
            c.execute(C.client_identities.insert().values(id=client_id, kind=kind, name=name,
                                                          secret_sha256=_sha(secret), created_at=now))
            c.execute(d.update().where(d.c.id == dep["id"]).values(used_at=now, used_by=client_id))
        return {"client_id": client_id, "secret": secret, "name": name, "kind": kind}

    @staticmethod
    def _free_name(c: sa.Connection, base: str) -> str:
        taken = {r[0] for r in c.execute(sa.select(T.jump_clients.c.name).where(T.jump_clients.c.name.like(base + "%")))}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        return name

    # --- identities ------------------------------------------------------------------------------
    def authenticate(self, client_id: str, secret: str) -> tuple[str, str]:
        """(kind, name) of a live identity; Unauthorized for an unknown one, Conflict for a revoked one or one
        whose jump client or jumpoint was removed. One SELECT (every hello of a reconnecting fleet runs it)."""
        row = self._identity_row(client_id)
        if row is None or not hmac.compare_digest(row.secret_sha256, _sha(secret)):
            raise Unauthorized("unknown client identity or wrong secret")
        if row.revoked_at is not None:
            raise Conflict(f"this client's identity was revoked by {row.revoked_by}")
        if (row.jump_name if row.kind == "jump" else row.jumpoint_name) is None:
            raise Conflict(f"{row.kind} {row.name!r} was removed from the site")
        return row.kind, row.name

    def _identity_row(self, client_id: str):
        """The identity with the jump client or jumpoint it stands for (NULL when that item is gone)."""
        with self.engine.connect() as c:
            return c.execute(_IDENTITY_QUERY, {"id": client_id}).first()

    def revoke(self, kind: str, name: str, actor: str) -> int:
        """Revoke every identity of a jump client or jumpoint; the number revoked."""
        i = C.client_identities
        with self.engine.begin() as c:
            n = c.execute(i.update().where(i.c.kind == kind, i.c.name == name, i.c.revoked_at.is_(None))
                          .values(revoked_at=time.time(), revoked_by=actor)).rowcount
        if not n:
            raise NotFound(f"no live identity for {kind} {name!r}")
        return n

    def identities(self) -> list[dict]:
        i = C.client_identities
        with self.engine.connect() as c:
            rows = c.execute(sa.select(i.c.id, i.c.kind, i.c.name, i.c.created_at, i.c.revoked_at, i.c.revoked_by)
                             .order_by(i.c.created_at))
            return [dict(r) for r in rows.mappings()]

    # --- the items clients stand for -------------------------------------------------------------
    def jump_clients(self) -> list[dict]:
        t = T.jump_clients
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(sa.select(t.c.name, t.c.hostname, t.c.os, t.c.group_name,
                                                         t.c.public_ip, t.c.last_seen_at).order_by(t.c.name)).mappings()]

    def jumpoints(self) -> list[dict]:
        t = T.jumpoints
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(sa.select(t).order_by(t.c.name)).mappings()]

    def jumpoint(self, name: str) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(T.jumpoints).where(T.jumpoints.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no jumpoint {name!r}")
        return dict(row)

    def seen_many(self, seen: dict[tuple[str, str], tuple]) -> None:
        """Record jump clients' last-seen times (and what they reported about themselves) in one
        transaction: ``{(kind, name): (when, hostname, os, public_ip)}``.

        A client whose report matches what is recorded (a reconnection: nearly every client of a
        recovering fleet) and a disconnection are written together with the others of the same second,
        in one UPDATE (``last_seen_at`` then the earliest time of that second's), so a storm of
        reconnections costs a statement a second, not one (and its change-log capture) a client
        (PERF-08); a client that reported something new is updated alone, at its own time."""
        jumps = {name: v for (kind, name), v in seen.items() if kind == "jump"}
        if not jumps:
            return
        t = T.jump_clients
        with self.engine.begin() as c:
            recorded = self._reported_now(c, list(jumps))
            same_second: dict[int, list[tuple[float, str]]] = {}
            for name, (when, hostname, os_name, public_ip) in jumps.items():
                if name not in recorded:  # removed meanwhile: nothing to update
                    continue
                values = _reported(hostname, os_name, public_ip)
                if all(recorded[name][k] == v for k, v in values.items()):
                    same_second.setdefault(int(when), []).append((when, name))
                else:
                    c.execute(t.update().where(t.c.name == name).values(last_seen_at=when, **values))
            for group in same_second.values():
                when = min(w for w, _ in group)
                names = [n for _, n in group]
                for i in range(0, len(names), SEEN_BATCH):
                    c.execute(t.update().where(t.c.name.in_(names[i:i + SEEN_BATCH])).values(last_seen_at=when))

    @staticmethod
    def _reported_now(c: sa.Connection, names: list[str]) -> dict[str, dict]:
        """{name: {"hostname", "os", "public_ip"}} as recorded, for those of ``names`` that exist."""
        t = T.jump_clients
        out = {}
        for i in range(0, len(names), SEEN_BATCH):
            for r in c.execute(sa.select(t.c.name, t.c.hostname, t.c.os, t.c.public_ip)
                               .where(t.c.name.in_(names[i:i + SEEN_BATCH]))):
                out[r.name] = {"hostname": r.hostname, "os": r.os, "public_ip": r.public_ip}
        return out

    # --- what a representative may do ------------------------------------------------------------
    def rep_permissions(self, username: str, provider: str | None = None,
                        groups: tuple[str, ...] | list[str] = ()) -> frozenset[str]:
        """The representative permissions (group policies, SITE-01) a user holds: as a user, through
        their teams, and through the directory groups ``provider`` reported at login (members of kind
        provider_group; group names compared without case); administrators hold all."""
        from tether.site.models import REP_PERMISSIONS

        with self.engine.connect() as c:
            admin = c.execute(sa.select(users.c.is_admin).where(users.c.username == username)).scalar()
            if admin:
                return frozenset(REP_PERMISSIONS)
            p, m = T.group_policies, T.group_policy_members
            rows = c.execute(sa.select(p.c.permissions).join(m, m.c.policy == p.c.name).where(
                self._members(c, username, provider, groups)))
            return frozenset(x for r in rows for x in (r[0] or []))

    def group_policies(self, username: str, provider: str | None = None,
                       groups: tuple[str, ...] | list[str] = ()) -> list[str]:
        """The names of the group policies that apply to a user (as in ``rep_permissions``)."""
        m = T.group_policy_members
        with self.engine.connect() as c:
            return sorted({r[0] for r in c.execute(sa.select(m.c.policy).where(
                self._members(c, username, provider, groups)))})

    @staticmethod
    def _members(c: sa.Connection, username: str, provider: str | None, groups) -> sa.ColumnElement:
        """The group-policy member rows that stand for this user: the user, their teams, their groups."""
        m = T.group_policy_members
        teams = [r[0] for r in c.execute(sa.select(T.team_members.c.team).where(
            T.team_members.c.username == username))]
        who = [sa.and_(m.c.kind == "user", m.c.username == username),
               sa.and_(m.c.kind == "team", m.c.team.in_(teams))]
        if provider and groups:
            who.append(sa.and_(m.c.kind == "provider_group", m.c.provider == provider,
                               sa.func.lower(m.c.group_name).in_([g.lower() for g in groups])))
        return sa.or_(*who)


def _reported(hostname: str | None, os_name: str | None, public_ip: str | None) -> dict:
    """The columns a connecting jump client's report sets (a disconnection reports nothing)."""
    values: dict = {}
    if hostname:
        values["hostname"] = hostname[:253]
    if os_name:
        values["os"] = os_name[:64]
    if public_ip:
        values["public_ip"] = public_ip
    return values


def _identity_query() -> sa.Select:
    i, jc, jp = C.client_identities, T.jump_clients, T.jumpoints
    return (sa.select(i.c.kind, i.c.name, i.c.secret_sha256, i.c.revoked_at, i.c.revoked_by,
                      jc.c.name.label("jump_name"), jp.c.name.label("jumpoint_name"))
            .select_from(i.outerjoin(jc, sa.and_(i.c.kind == "jump", jc.c.name == i.c.name))
                         .outerjoin(jp, sa.and_(i.c.kind == "jumpoint", jp.c.name == i.c.name)))
            .where(i.c.id == sa.bindparam("id")))


_IDENTITY_QUERY = _identity_query()  # built once: its compiled form is then cached by the engine


def _public_deployment(row: dict) -> dict:
    return {k: row.get(k) for k in ("id", "kind", "target", "trust", "created_by", "created_at", "expires_at",
                                    "used_at", "used_by")}
