"""The integration's HTTPS client for a site's JSON API: trust (a pinned
certificate or a CA), the API account's bearer token (client credentials,
fetched again when it expires), the version check, the reporting listings,
resumable recording downloads (HTTP Range) and site backups.

Every answer of the site that is not a success becomes the ``tether.core``
error of its status (401/403 exit 3, 404/410 exit 4, ...) with the site's
own message; a site that cannot be reached or whose certificate is not
trusted is ``Unreachable`` (exit 8)."""

from __future__ import annotations

import hashlib
import os
import re
import ssl
from pathlib import Path
from typing import Callable, Iterable, Iterator

import httpx

from tether import __version__
from tether.core import errors as E
from tether.core.crashpoints import checkpoint

from .config import Config

# the reporting API contract versions this program speaks (the site's /api/reporting/info "reporting_api")
SUPPORTED_REPORTING_API = frozenset({1})
# the oldest appliance software with that contract (order=oldest cursors, Range, /api/reporting/info)
MIN_SOFTWARE = (1, 2, 1)
ENV_SUPPORTED = "TETHER_INTEGRATION_REPORTING_API"  # test seam: the contract versions to accept, e.g. "2,3"
CHUNK = 1 << 16
_STATUS = {400: E.Malformed, 401: E.Unauthorized, 403: E.Forbidden, 404: E.NotFound, 409: E.Conflict,
           410: E.Gone, 413: E.TooLarge, 422: E.Invalid, 429: E.Throttled}


class Unreachable(E.TetherError):
    exit_code, code = 8, "unreachable"


class Unsupported(E.Conflict):
    """The site's version is not one this program supports (exit 5)."""


def supported_api() -> frozenset[int]:
    raw = os.environ.get(ENV_SUPPORTED)
    return frozenset(int(x) for x in raw.split(",") if x.strip()) if raw else SUPPORTED_REPORTING_API


def check_version(info: dict) -> None:
    """Refuse a site this program does not support, naming both versions."""
    sw = str(info.get("software_version", "?"))
    api = info.get("reporting_api")
    ours = f"tether-integration {__version__} (reporting API {', '.join(map(str, sorted(supported_api())))})"
    parts = tuple(int(x) for x in re.findall(r"\d+", sw)[:3])
    if api not in supported_api() or parts < MIN_SOFTWARE:
        raise Unsupported(f"the site runs Tether {sw} (reporting API {api}); {ours} does not support it",
                          hint=f"use the tether-integration release that matches the site's software ({sw})")


def ssl_context(cfg: Config) -> ssl.SSLContext:
    if cfg.pinned_cert:
        # the appliance's own certificate is the only trust anchor (a leaf accepted as an anchor); its name
        # is not checked, since the certificate itself is what is pinned
        ctx = ssl.create_default_context(cafile=str(cfg.pinned_cert))
        ctx.check_hostname = False
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return ctx
    return ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)


def _raise_for(r: httpx.Response, what: str) -> None:
    if r.status_code < 400:
        return
    try:
        body = r.json()
        message, hint = body.get("message") or r.reason_phrase, body.get("hint")
    except ValueError:
        message, hint = (r.text or r.reason_phrase).strip()[:300], None
    cls = _STATUS.get(r.status_code, E.TetherError)
    raise cls(f"{what}: the site answered {r.status_code}: {message}", hint=hint)


class Site:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.http = httpx.Client(base_url=cfg.site_url + "/api", verify=ssl_context(cfg), timeout=cfg.timeout)
        self._token: str | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Site":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- transport ------------------------------------------------------------------------------
    def _send(self, method: str, url: str, *, stream: bool = False, **kw) -> httpx.Response:
        try:
            req = self.http.build_request(method, url, **kw)
            return self.http.send(req, stream=stream)
        except httpx.ConnectError as exc:
            reason = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in reason:
                raise Unreachable(f"{self.cfg.site_url}: the site's certificate is not trusted ({reason})",
                                  hint="check site.pinned_cert / site.ca_file") from None
            raise Unreachable(f"cannot reach {self.cfg.site_url}: {reason}",
                              hint="check site.url and that the appliance is up") from None
        except httpx.TransportError as exc:
            raise Unreachable(f"{self.cfg.site_url}: the connection failed: {exc!r}") from None

    def token(self) -> str:
        if self._token is None:
            r = self._send("POST", "/oauth/token", data={"grant_type": "client_credentials",
                                                         "client_id": self.cfg.client_id,
                                                         "client_secret": self.cfg.client_secret})
            if r.status_code == 401:
                raise E.Unauthorized(f"the site refused API client {self.cfg.client_id!r}: wrong client id or "
                                     "secret, or the account is disabled",
                                     hint="check site.client_id and the secret file or variable")
            _raise_for(r, "getting a token")
            self._token = r.json()["access_token"]
        return self._token

    def request(self, method: str, url: str, *, what: str, stream: bool = False, headers: dict | None = None,
                **kw) -> httpx.Response:
        for attempt in (0, 1):
            h = {**(headers or {}), "Authorization": f"Bearer {self.token()}"}
            r = self._send(method, url, stream=stream, headers=h, **kw)
            if r.status_code == 401 and attempt == 0:  # the token expired: one new one
                r.close()
                self._token = None
                continue
            if r.status_code >= 400:
                if stream:
                    r.read()
                _raise_for(r, what)
            return r
        raise AssertionError("unreachable")

    def get_json(self, url: str, what: str, **params) -> dict:
        return self.request("GET", url, what=what, params={k: v for k, v in params.items() if v is not None}).json()

    # --- the API ----------------------------------------------------------------------------------
    def info(self) -> dict:
        try:
            info = self.get_json("/reporting/info", "checking the site's version")
        except E.NotFound:
            raise Unsupported(f"the site has no /api/reporting/info: its Tether is older than "
                              f"{'.'.join(map(str, MIN_SOFTWARE))}; tether-integration {__version__} does not "
                              "support it", hint="update the appliance software") from None
        check_version(info)
        return info

    def pages(self, kind: str, cursor: str | None, limit: int = 200) -> Iterator[tuple[list[dict], str | None]]:
        """Pages of ``kind`` in the order written, from ``cursor`` to the end (an empty page)."""
        while True:
            page = self.get_json(f"/reporting/{kind}", f"listing {kind}", order="oldest", limit=limit,
                                 cursor=cursor)
            if not page["items"]:
                return
            cursor = page["next_cursor"]
            yield page["items"], cursor

    def session(self, lsid: str) -> dict:
        return self.get_json(f"/reporting/sessions/{lsid}", f"reading session {lsid}")

    def download_recording(self, rec: dict, part: Path, progress: Callable[[int, int], None]) -> tuple[str, str]:
        """Fetch recording ``rec`` into ``part``, resuming from its current size (Range); check the whole
        file against the site's SHA-256. Returns (the name the site gives it, its sha256)."""
        have = part.stat().st_size if part.exists() else 0
        total = rec["size"]
        complete = 0 < total <= have  # all here already (killed before it was written): only the name is asked
        headers = {"Range": f"bytes={total - 1 if complete else have}-"} if have else {}
        url = f"/reporting/recordings/{rec['id']}/content"
        r = self.request("GET", url, what=f"downloading recording {rec['id']}", stream=True, headers=headers)
        try:
            name = _filename(r) or f"recording-{rec['id']}"
            sha = r.headers.get("x-content-sha256", rec.get("sha256"))
            mode = "ab" if r.status_code == 206 else "wb"
            if r.status_code == 200:
                have = 0
            elif complete:
                r.read()
            chunks = [] if complete and r.status_code == 206 else r.iter_bytes(CHUNK)
            have = _save(chunks, part, mode, have, total, progress, "integration.download.chunk")
        except httpx.TransportError as exc:
            have = part.stat().st_size if part.exists() else 0
            raise Unreachable(f"downloading recording {rec['id']}: the connection broke after {have} bytes "
                              f"({exc!r}); the next pass resumes from there") from None
        finally:
            r.close()
        got = file_sha256(part)
        if got != sha or (rec.get("sha256") and got != rec["sha256"]):
            part.unlink(missing_ok=True)
            raise E.IntegrityError(f"recording {rec['id']}: SHA-256 {got} does not match the site's {sha}; "
                                   "the partial file was discarded and the next pass downloads it again")
        return name, sha

    def download_backup(self, out: Path, progress: Callable[[int, int], None]) -> tuple[str, str, int]:
        """A new site backup into ``out``: (the site's file name, sha256, size)."""
        cfg = self.cfg
        if not (cfg.backup_password or cfg.backup_no_password):
            raise E.Invalid("backups: give password_file or password_env, or no_password = true",
                            field="password_file", hint="a site backup is encrypted with this password")
        body = {"include_history": cfg.backup_include_history}
        body.update({"password": cfg.backup_password} if cfg.backup_password else {"no_password": True})
        r = self.request("POST", "/backup", what="downloading a site backup", stream=True, json=body)
        h, n = hashlib.sha256(), 0
        try:
            total = int(r.headers.get("content-length") or 0)
            n = _save(r.iter_bytes(CHUNK), out, "wb", 0, total, progress, "integration.backup.chunk", h)
        except httpx.TransportError as exc:
            n = out.stat().st_size if out.exists() else 0
            raise Unreachable(f"downloading a site backup: the connection broke after {n} bytes ({exc!r})") \
                from None
        finally:
            r.close()
        if total and n != total:
            raise E.IntegrityError(f"site backup: {n} bytes received of {total}")
        return _filename(r) or "site.nsb", h.hexdigest(), n


def _save(chunks: Iterable[bytes], path: Path, mode: str, have: int, total: int,
          progress: Callable[[int, int], None], point: str, h=None) -> int:
    """Write (or append) ``chunks`` to ``path``, reporting progress and passing the crash point ``point`` at
    each chunk (into ``h`` too, a hash, when given); synced to disk. Returns the bytes there after ``have``."""
    with open(path, mode) as f:
        for chunk in chunks:
            f.write(chunk)
            if h is not None:
                h.update(chunk)
            have += len(chunk)
            progress(have, total)
            checkpoint(point)
        f.flush()
        os.fsync(f.fileno())
    return have


def _filename(r: httpx.Response) -> str | None:
    m = re.search(r'filename="?([^";]+)"?', r.headers.get("content-disposition", ""))
    return os.path.basename(m.group(1)) if m else None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
