"""Who is calling the desk.

* Staff: username and password (argon2id, ``tether.core.passwords``); a login
  gives a session token, sent back as a cookie (HTML) or a bearer token
  (scripts). Cookie-authenticated changes must echo the session's CSRF token
  (form field ``csrf`` or header ``X-CSRF-Token``). Roles: ``staff``,
  ``engineer`` (product support engineer, DESK-06), ``supervisor``.
* Representatives of customers: identified by their email address only
  (opening incidents, messages, feedback); see ``customers.entitled``.
* Appliances (DESK-09): an API token (``tda_...``) bound to a customer and a
  contact representative; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from tether.core.errors import Conflict, Invalid, NotFound, Unauthorized
from tether.core.passwords import check_new_password, hash_password, verify_password
from tether.core.sessions import SessionStore

from . import tables
from .clock import iso
from .context import one

ROLES = ("staff", "engineer", "supervisor")
TOKEN_PREFIX = "tda_"
_DUMMY_HASH = hash_password("not-a-real-password")


def add_staff(desk, username: str, password: str, *, email: str, role: str = "staff",
              display_name: str | None = None) -> dict:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    check_new_password(password, field="password")
    with desk.tx() as c:
        if one(c, sa.select(tables.staff).where(tables.staff.c.username == username)):
            raise Conflict(f"staff user {username!r} exists already", field="username")
        c.execute(tables.staff.insert().values(username=username, password_hash=hash_password(password),
                                               email=email.lower(), role=role, display_name=display_name))
    desk.audit.record("cli", "staff.add", username)
    return {"username": username, "email": email.lower(), "role": role}


def sessions(desk) -> SessionStore:
    return SessionStore(desk.engine, tables.sessions)


def login(desk, username: str, password: str, source_ip: str | None) -> tuple[str, dict]:
    with desk.read() as c:
        user = one(c, sa.select(tables.staff).where(tables.staff.c.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)  # same work either way
        raise Unauthorized("wrong username or password")
    if not verify_password(user["password_hash"], password):
        desk.audit.record(username, "login.failed", source_ip=source_ip)
        raise Unauthorized("wrong username or password")
    token, sess = sessions(desk).create(username, source_ip)
    desk.audit.record(username, "login", source_ip=source_ip)
    return token, {"username": username, "role": user["role"], "csrf_token": sess.csrf_token}


def staff_for_session(desk, token: str | None) -> tuple[dict, str] | None:
    sess = sessions(desk).get(token)
    if sess is None:
        return None
    with desk.read() as c:
        user = one(c, sa.select(tables.staff).where(tables.staff.c.username == sess.username))
    if user is None:
        return None
    user.pop("password_hash")
    return user, sess.csrf_token


def staff_by_email(conn, email: str) -> dict | None:
    return one(conn, sa.select(tables.staff).where(tables.staff.c.email == email.lower()))


def list_staff(desk) -> list[dict]:
    s = tables.staff
    with desk.read() as c:
        return [dict(r) for r in c.execute(sa.select(s.c.username, s.c.email, s.c.role, s.c.display_name))
                .mappings()]


def create_token(desk, *, name: str, customer_id: int, contact_email: str) -> tuple[str, dict]:
    """A new appliance token; the secret is returned once and never stored."""
    with desk.read() as c:
        rep = one(c, sa.select(tables.representatives).where(tables.representatives.c.email == contact_email))
        if not one(c, sa.select(tables.customers).where(tables.customers.c.id == customer_id)):
            raise NotFound(f"no customer {customer_id}", field="customer_id")
    if rep is None or rep["customer_id"] != customer_id:
        raise Invalid(f"{contact_email} is not a representative of customer {customer_id}", field="contact_email")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with desk.tx() as c:
        if one(c, sa.select(tables.tokens).where(tables.tokens.c.name == name)):
            raise Conflict(f"a token named {name!r} exists already", field="name")
        c.execute(tables.tokens.insert().values(
            token_hash=hashlib.sha256(secret.encode()).hexdigest(), name=name, customer_id=customer_id,
            contact_email=contact_email, created_at=iso(desk.now()), revoked=False))
    return secret, {"name": name, "customer_id": customer_id, "contact_email": contact_email}


def revoke_token(desk, name: str) -> None:
    with desk.tx() as c:
        if not c.execute(tables.tokens.update().where(tables.tokens.c.name == name).values(revoked=True)).rowcount:
            raise NotFound(f"no token named {name!r}", field="name")


def appliance_for_token(desk, secret: str | None) -> dict:
    if not secret or not secret.startswith(TOKEN_PREFIX):
        raise Unauthorized("an appliance token is required (Authorization: Bearer tda_...)")
    t = tables.tokens
    with desk.read() as c:
        row = one(c, sa.select(t).where(t.c.token_hash == hashlib.sha256(secret.encode()).hexdigest()))
    if row is None or row["revoked"]:
        raise Unauthorized("unknown or revoked appliance token")
    return row
