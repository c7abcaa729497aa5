"""Credentials of the remote commands: which password a login uses, per face, and the login sessions the
CLI keeps between commands (docs/cli.md, "Trust and credentials").

Passwords: ``--password`` first, then the face's own variable or file (``TETHER_APPLIANCE_PASSWORD`` /
``TETHER_APPLIANCE_PASSWORD_FILE`` for the /appliance admin, ``TETHER_SITE_PASSWORD`` /
``TETHER_SITE_PASSWORD_FILE`` for a /login user), then ``TETHER_PASSWORD`` (either face), else a prompt.
So the two admins, whose passwords differ, are given once each, side by side.

Sessions: a command that logs in keeps the session token it got, so that the next command of the same user
on the same appliance reuses it instead of logging in again (one ``login`` audit entry per session, not per
command). The cache is one JSON file (``$TETHER_SESSION_CACHE``, default
``$XDG_CACHE_HOME/tether/sessions.json``; ``TETHER_SESSION_CACHE=off`` turns it off), written 0600, in a
0700 directory. Each entry is sealed (AES-256-GCM, ``core.secretbox``) under a key derived by scrypt from the
password it was made with and a random salt: the file alone opens no session, a command with another
password does not reuse it, and an entry is dropped at its session's expiry, when the appliance no longer
accepts its token (then the command logs in afresh) and when ``tether password`` changes the password."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

from tether.core.errors import IntegrityError, Unauthorized
from tether.core.fsutil import open_private
from tether.core.secretbox import SecretBox

FACE_VARS = {"appliance": "TETHER_APPLIANCE_PASSWORD", "site": "TETHER_SITE_PASSWORD"}
MAX_AGE = 8 * 3600  # never kept longer than a session cookie lives, whatever the appliance says
_SCRYPT = {"n": 1 << 14, "r": 8, "p": 1, "dklen": 32}


def login_password(face: str, given: str | None) -> str | None:
    """The password for a login on ``face`` ("appliance" or "site"): given, else the face's variable or
    file, else TETHER_PASSWORD; None when none is set (the caller prompts)."""
    if given is not None:
        return given
    var = FACE_VARS[face]
    if os.environ.get(var):
        return os.environ[var]
    file = os.environ.get(var + "_FILE")
    if file:
        from .output import fail

        try:
            return Path(file).read_text().rstrip("\r\n")
        except OSError as exc:
            fail(f"{var}_FILE={file}: cannot read it: {exc.strerror}", 2)
    return os.environ.get("TETHER_PASSWORD") or None


def cache_path() -> Path | None:
    raw = os.environ.get("TETHER_SESSION_CACHE", "")
    if raw.lower() in ("off", "0", "no", "false"):
        return None
    if raw:
        return Path(raw)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tether" / "sessions.json"


def _key(face: str, url: str, user: str) -> str:
    return f"{face} {url} {user}"


def _box(password: str, salt: bytes) -> SecretBox:
    return SecretBox(hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT))


class SessionCache:
    def __init__(self, path: Path | None):
        self.path = path

    def _read(self) -> dict:
        if self.path is None:
            return {}
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        now = time.time()
        return {k: v for k, v in doc.items() if isinstance(v, dict) and v.get("expires_at", 0) > now} \
            if isinstance(doc, dict) else {}

    def _write(self, doc: dict) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with open_private(tmp) as f:
                f.write(json.dumps(doc, indent=1).encode())
            tmp.replace(self.path)
        except OSError:
            pass  # a cache: a command never fails because it cannot keep its session

    def get(self, face: str, url: str, user: str, password: str) -> str | None:
        entry = self._read().get(_key(face, url, user))
        if not entry:
            return None
        try:
            salt = base64.b64decode(entry["salt"])
            return _box(password, salt).unseal(entry["token"], _key(face, url, user)).decode()
        except (IntegrityError, KeyError, ValueError):
            return None  # made with another password (or damaged): not this caller's session

    def put(self, face: str, url: str, user: str, password: str, token: str, expires_at: float | None) -> None:
        if self.path is None:
            return
        salt = os.urandom(16)
        doc = self._read()
        doc[_key(face, url, user)] = {
            "token": _box(password, salt).seal(token, _key(face, url, user)),
            "salt": base64.b64encode(salt).decode(),
            "expires_at": min(float(expires_at or 0) or time.time() + MAX_AGE, time.time() + MAX_AGE)}
        self._write(doc)

    def forget(self, face: str, url: str, user: str) -> None:
        doc = self._read()
        if doc.pop(_key(face, url, user), None) is not None:
            self._write(doc)


def cached_login(face: str, url: str, user: str, password: str, login: Callable[[], dict],
                 still_valid: Callable[[str], bool]) -> str:
    """The session token for ``user`` on ``face`` of the appliance at ``url``: the cached one when the
    appliance still accepts it, else a fresh login (``login()`` returns the API's session answer)."""
    cache = SessionCache(cache_path())
    token = cache.get(face, url, user, password)
    if token is not None:
        try:
            if still_valid(token):
                return token
        except Unauthorized:
            pass
        cache.forget(face, url, user)
    res = login()
    cache.put(face, url, user, password, res["token"], res.get("expires_at"))
    return res["token"]


def forget(face: str, url: str, user: str) -> None:
    SessionCache(cache_path()).forget(face, url, user)
