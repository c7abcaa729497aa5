"""Talking to a running appliance over HTTPS (for every command that takes
``--url``). TLS trust: ``--cacert FILE`` verifies the chain and the host
name — the URL's, or the one ``tether --server-name NAME`` (TETHER_SERVER_NAME)
gives when the URL is an address and the certificate names the host;
``--pin-cert FILE`` trusts exactly the certificate(s) in FILE whatever the
address and whatever the chain the appliance sends with it (OpenSSL's partial
chain: the pinned certificate is the trust anchor, so a site's own CA-signed
certificate pins as the built-in one does); ``--insecure`` is refused unless
named. HTTP error bodies are turned back into the same exit codes as local errors."""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer

from tether.core import errors as E
from tether.core.fsutil import open_private

from . import credentials
from .output import EXIT_UNREACHABLE, fail

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="TETHER_URL", help="Appliance base URL, https://HOST:PORT")]
CaOpt = Annotated[str | None, typer.Option("--cacert", envvar="TETHER_CACERT", help="CA bundle to verify the appliance")]
PinOpt = Annotated[str | None, typer.Option("--pin-cert", envvar="TETHER_PIN_CERT",
                                            help="Trust exactly this certificate (PEM), e.g. the built-in one")]
UserOpt = Annotated[str, typer.Option("--user", envvar="TETHER_USER", help="User name")]
PasswordOpt = Annotated[str | None, typer.Option(
    "--password", help="Login password (prefer a variable: TETHER_APPLIANCE_PASSWORD for the /appliance admin, "
                       "TETHER_SITE_PASSWORD for a /login user, or TETHER_PASSWORD for either; also *_FILE)")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="TETHER_TOKEN", help="API bearer token")]

_STATUS_ERRORS = {400: E.IntegrityError, 401: E.Unauthorized, 403: E.Forbidden, 404: E.NotFound, 409: E.Conflict,
                  422: E.Invalid, 429: E.Throttled}


SERVER_NAME_ENV = "TETHER_SERVER_NAME"


def server_name() -> str | None:
    """The host name to check the certificate against (and send as SNI) instead of the URL's host."""
    return os.environ.get(SERVER_NAME_ENV) or None


def ssl_context(cacert: str | None, pin_cert: str | None) -> ssl.SSLContext:
    if pin_cert:
        ctx = ssl.create_default_context(cafile=pin_cert)
        ctx.check_hostname = False  # the pinned certificate itself is the trust anchor
        # a pinned leaf is trusted as it is, whatever chain the server sends after it (its CA is not needed)
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return ctx
    return ssl.create_default_context(cafile=cacert) if cacert else ssl.create_default_context()


def _tls_hint(exc: Exception, url: str) -> str:
    text = str(exc)
    host = httpx.URL(url).host
    if "match" in text or "mismatch" in text or "IP address" in text:
        return (f"the certificate does not name {host}: give the name it is issued to with "
                f"`tether --server-name NAME ...` (or {SERVER_NAME_ENV}), or pin it with --pin-cert FILE")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "check --cacert (the CA that issued the appliance's certificate) or pin the certificate with --pin-cert"
    return "check the URL, that the appliance runs, and the certificate options"


@dataclass
class Remote:
    url: str
    verify: ssl.SSLContext
    token: str | None = None

    @classmethod
    def from_options(cls, url: str | None, cacert: str | None, pin_cert: str | None) -> "Remote":
        if not url:
            fail("no appliance URL given", 2, "pass --url https://HOST:PORT or set TETHER_URL")
        return cls(url.rstrip("/"), ssl_context(cacert, pin_cert))

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        """One HTTPS request; HTTP errors come back as the matching TetherError."""
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            with httpx.Client(verify=self.verify, timeout=float(os.environ.get("TETHER_TIMEOUT", "60"))) as c:
                r = c.request(method, self.url + path, headers=headers, extensions=self._sni(), **kw)
        except httpx.ConnectError as exc:
            fail(f"cannot reach {self.url}: {exc}", EXIT_UNREACHABLE, _tls_hint(exc, self.url))
        except httpx.HTTPError as exc:
            fail(f"request to {self.url} failed: {exc}", EXIT_UNREACHABLE)
        if r.status_code >= 400:
            self._raise(r)
        return r

    def _sni(self) -> dict:
        name = server_name()
        return {"sni_hostname": name} if name else {}

    def call(self, method: str, path: str, **kw) -> dict | list:
        return self.request(method, path, **kw).json()

    @staticmethod
    def _raise(r: httpx.Response) -> None:
        try:
            body = r.json()
        except ValueError:
            body = {"message": r.text.strip() or r.reason_phrase}
        cls = _STATUS_ERRORS.get(r.status_code, E.TetherError)
        if r.status_code == 503 and isinstance(body, dict) and body.get("error") == "unavailable":
            cls = E.Unavailable  # the object store behind the appliance is down or refuses (exit 8)
        err = cls.__new__(cls)
        E.TetherError.__init__(err, body.get("message", "request failed"), hint=body.get("hint"),
                               field=body.get("field"))
        raise err

    def download(self, method: str, path: str, out: Path, **kw) -> Path:
        """Stream a file response to ``out`` (a directory: the server's file name)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        tmp = None
        try:
            with httpx.Client(verify=self.verify, timeout=None) as c, \
                    c.stream(method, self.url + path, headers=headers, extensions=self._sni(), **kw) as r:
                if r.status_code >= 400:
                    r.read()
                    self._raise(r)
                name = re.search(r'filename="?([^";]+)"?', r.headers.get("content-disposition", ""))
                target = out / (name.group(1) if name else "download") if out.is_dir() else out
                tmp = target.with_name(target.name + ".partial")
                with open_private(tmp) as f:  # backups, snapshots, exports: 0600
                    for chunk in r.iter_bytes(1 << 20):
                        f.write(chunk)
                tmp.rename(target)
                return target
        except httpx.HTTPError as exc:
            if tmp:
                tmp.unlink(missing_ok=True)
            fail(f"download from {self.url} failed: {exc}", EXIT_UNREACHABLE, _tls_hint(exc, self.url))

    def appliance_login(self, user: str, password: str | None, accept_agreement: bool = False) -> "Remote":
        """Log in as the /appliance admin (password: cli/credentials.py), reusing the cached session."""
        password = credentials.login_password("appliance", password)
        if password is None:
            password = typer.prompt(f"/appliance password for {user}", hide_input=True)
        self.token = credentials.cached_login(
            "appliance", self.url, user, password,
            lambda: self.call("POST", "/appliance/api/session",
                              json={"username": user, "password": password, "accept_agreement": accept_agreement}),
            lambda t: self._accepts(t, "/appliance/api/status"))
        return self

    def site_login(self, user: str | None, password: str | None, token: str | None) -> "Remote":
        """Log in as a /login user (or use an API token), reusing the cached session."""
        if token:
            self.token = token
            return self
        if not user:
            fail("give --token, or --user and a password", 2)
        password = credentials.login_password("site", password)
        if password is None:
            password = typer.prompt(f"/login password for {user}", hide_input=True)
        self.token = credentials.cached_login(
            "site", self.url, user, password,
            lambda: self.call("POST", "/api/session", json={"username": user, "password": password}),
            lambda t: self._accepts(t, "/api/site/information"))
        return self

    def _accepts(self, token: str, path: str) -> bool:
        """Whether the appliance still takes this session token (any answer but 401: a missing permission
        or a pending password change is still a live session)."""
        saved, self.token = self.token, token
        try:
            self.request("GET", path)
        except E.Unauthorized:
            raise
        except E.TetherError:
            pass
        finally:
            self.token = saved
        return True
