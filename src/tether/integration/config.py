"""The integration's configuration: a TOML file (docs/integration.md) with
command-line flags over it. Validated once, here: a bad setting is an
``Invalid`` naming the setting, before anything is pulled or written.

Secrets never sit in the file itself: the API client secret (and a backup
password) come from a file or an environment variable the file names."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tether.core.errors import Invalid

KINDS = ("backups", "sessions", "recordings")
_EVERY = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PAIRS = [("client_secret_file", "client_secret_env"), ("pinned_cert", "ca_file"), ("password_file", "password_env")]
_EITHER = {a: b for a, b in _PAIRS} | {b: a for a, b in _PAIRS}


@dataclass
class Retention:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    @property
    def empty(self) -> bool:
        return not (self.keep_last or self.keep_daily or self.keep_weekly or self.keep_monthly)


@dataclass
class Destination:
    type: str = "folder"  # folder | s3
    path: Path | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    part_size: int = 8 << 20


@dataclass
class KindSchedule:
    every: float | None = None  # seconds between passes; None: not pulled


@dataclass
class Config:
    site_url: str = ""
    pinned_cert: Path | None = None
    ca_file: Path | None = None
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    state_dir: Path = Path(".")
    destination: Destination = field(default_factory=Destination)
    schedules: dict[str, KindSchedule] = field(default_factory=lambda: {k: KindSchedule() for k in KINDS})
    backup_password: str | None = field(default=None, repr=False)
    backup_no_password: bool = False
    backup_include_history: bool = False
    retention: Retention = field(default_factory=Retention)
    timeout: float = 60.0


def default_state_dir() -> Path:
    """Outside the destination (nothing of ours in the archive): %LOCALAPPDATA% on Windows, else
    $XDG_STATE_HOME or ~/.local/state."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tether-integration"
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "tether-integration"


def parse_every(value, name: str) -> float | None:
    if value in (None, False, "off", "never", ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    m = _EVERY.match(str(value).strip())
    if not m or int(m.group(1)) == 0:
        raise Invalid(f"{name}: {value!r} is not an interval (e.g. 15m, 1h, 24h, 7d, or off)", field=name)
    return float(int(m.group(1)) * _UNITS[m.group(2)])


def _secret(section: dict, base: str, where: str, *, required: bool) -> str | None:
    """``<base>_file`` (a file whose first line is the secret) or ``<base>_env`` (an environment variable)."""
    path, env = section.get(f"{base}_file"), section.get(f"{base}_env")
    if path and env:
        raise Invalid(f"{where}.{base}_file and {where}.{base}_env: give one", field=f"{base}_file")
    if path:
        try:
            text = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise Invalid(f"{where}.{base}_file: cannot read {path}: {exc.strerror}", field=f"{base}_file") from None
        if not text:
            raise Invalid(f"{where}.{base}_file: {path} is empty", field=f"{base}_file")
        return text
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise Invalid(f"{where}.{base}_env: the environment variable {env} is not set", field=f"{base}_env",
                          hint=f"export {env}=... in the service's environment")
        return value
    if required:
        raise Invalid(f"{where}: give {base}_file or {base}_env", field=f"{base}_file")
    return None


def _int(section: dict, key: str, where: str) -> int:
    v = section.get(key, 0)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise Invalid(f"{where}.{key}: a whole number >= 0", field=key)
    return v


def load(path: Path | None, flags: dict) -> Config:
    """The file (if any) with the non-None ``flags`` over it (keys as in the TOML, ``section.key``)."""
    doc: dict = {}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise Invalid(f"--config: cannot read {path}: {exc.strerror}", field="config") from None
        except tomllib.TOMLDecodeError as exc:
            raise Invalid(f"--config: {path} is not valid TOML: {exc}", field="config") from None
    for dotted, value in flags.items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        doc.setdefault(section, {})[key] = value
        other = _EITHER.get(key)
        if other:  # a flag replaces the file's choice of the pair (a secret's file or variable, the trust)
            doc[section].pop(other, None)
    site, dest, state = doc.get("site", {}), doc.get("destination", {}), doc.get("state", {})
    cfg = Config()
    cfg.site_url = str(site.get("url", "")).rstrip("/")
    if not cfg.site_url.startswith("https://"):
        raise Invalid("site.url: the site's https:// address (tether-integration talks HTTPS only)", field="url",
                      hint="set site.url in the config or pass --site-url https://support.example.com")
    if site.get("pinned_cert") and site.get("ca_file"):
        raise Invalid("site.pinned_cert and site.ca_file: give one", field="pinned_cert")
    for key in ("pinned_cert", "ca_file"):
        if site.get(key):
            p = Path(site[key]).expanduser()
            if not p.is_file():
                raise Invalid(f"site.{key}: {p} is not a file", field=key)
            setattr(cfg, key, p)
    cfg.client_id = str(site.get("client_id", ""))
    if not cfg.client_id:
        raise Invalid("site.client_id: the API account's client id", field="client_id",
                      hint="create an API account on the site (/login/api-accounts) with the permissions in "
                           "docs/integration.md")
    cfg.client_secret = _secret(site, "client_secret", "site", required=True) or ""
    cfg.timeout = float(site.get("timeout", 60))
    d = cfg.destination
    d.type = dest.get("type", "s3" if dest.get("bucket") else "folder")
    if d.type == "folder":
        if not dest.get("path"):
            raise Invalid("destination.path: the folder to write into", field="path")
        d.path = Path(dest["path"]).expanduser()
    elif d.type == "s3":
        if not dest.get("bucket"):
            raise Invalid("destination.bucket: the bucket to write into", field="bucket")
        d.bucket, d.endpoint_url, d.region = dest["bucket"], dest.get("endpoint_url"), dest.get("region")
        d.prefix = str(dest.get("prefix", "")).strip("/")
        d.access_key_id = _secret(dest, "access_key_id", "destination", required=False)
        d.secret_access_key = _secret(dest, "secret_access_key", "destination", required=False)
        mib = dest.get("part_size_mib", 8)
        if not isinstance(mib, int) or not 5 <= mib <= 512:
            raise Invalid("destination.part_size_mib: 5 to 512", field="part_size_mib")
        d.part_size = mib << 20
    else:
        raise Invalid(f"destination.type: folder or s3, not {d.type!r}", field="type")
    cfg.state_dir = Path(state.get("dir") or default_state_dir()).expanduser()
    for kind in KINDS:
        cfg.schedules[kind] = KindSchedule(parse_every(doc.get(kind, {}).get("every"), f"{kind}.every"))
    b = doc.get("backups", {})
    cfg.backup_no_password = b.get("no_password", False) is True
    cfg.backup_password = _secret(b, "password", "backups", required=False)
    if cfg.schedules["backups"].every and not (cfg.backup_password or cfg.backup_no_password):
        raise Invalid("backups: give password_file or password_env, or no_password = true", field="password_file",
                      hint="a site backup is encrypted with this password; keep it somewhere the restore can find")
    cfg.backup_include_history = b.get("include_history", False) is True
    cfg.retention = Retention(*(_int(b, k, "backups") for k in ("keep_last", "keep_daily", "keep_weekly",
                                                                 "keep_monthly")))
    return cfg
