"""/appliance settings (APPL-02, APPL-03): their schemas, defaults, validation
and storage. Networking is recorded configuration (the host OS applies it);
TLS versions and ciphers, allowed admin networks and ports, the login
agreement and syslog forwarding are enforced by this process."""

from __future__ import annotations

import ipaddress
import re
import ssl
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tether.core import validate as v
from tether.core.errors import Invalid
from tether.core.secretbox import SecretBox

from .store import get_setting, put_setting

IP = Annotated[str, AfterValidator(v.ip_address)]
Network = Annotated[str, AfterValidator(v.ip_network)]
Netmask = Annotated[str, AfterValidator(v.netmask)]
Host = Annotated[str, AfterValidator(v.host)]
Hostname = Annotated[str, AfterValidator(v.hostname)]
Port = Annotated[int, AfterValidator(v.port), Field(json_schema_extra={"minimum": 1, "maximum": 65535})]  # v.port words it


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InterfaceAddress(_Model):
    address: IP
    netmask: Netmask

    @model_validator(mode="after")
    def _family(self):
        ip = ipaddress.ip_address(self.address)
        if ip.version == 4 and self.netmask.isdigit() and int(self.netmask) > 32:
            raise ValueError(f"netmask /{self.netmask} is too long for IPv4 address {self.address}")
        return self


class Interface(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{0,14}$")]
    addresses: list[InterfaceAddress] = []


class StaticRoute(_Model):
    destination: Network
    gateway: IP
    interface: str | None = None


class Snmp(_Model):
    enabled: v.Bool = False
    version: Literal["v2c", "v3"] = "v2c"
    community: str = "public"
    allowed_networks: list[Network] = []


class Networking(_Model):
    hostname: Hostname = "tether.local"
    interfaces: list[Interface] = [Interface(name="eth0", addresses=[])]
    default_gateway: IP | None = None
    dns_servers: list[IP] = []
    ntp_servers: list[Host] = ["pool.ntp.org"]
    static_routes: list[StaticRoute] = []
    snmp: Snmp = Snmp()

    @model_validator(mode="after")
    def _unique(self):
        names = [i.name for i in self.interfaces]
        if len(names) != len(set(names)):
            raise ValueError("interface names must be unique")
        return self


TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _cipher_list(value: str) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.set_ciphers(value)
    except ssl.SSLError:
        raise ValueError(f"{value!r} is not a cipher list OpenSSL accepts") from None
    return value


class Tls(_Model):
    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    max_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.3"
    ciphers: Annotated[str, AfterValidator(_cipher_list)] = "ECDHE+AESGCM:ECDHE+CHACHA20"

    @model_validator(mode="after")
    def _order(self):
        if TLS_VERSIONS[self.min_version] > TLS_VERSIONS[self.max_version]:
            raise ValueError("min_version is newer than max_version")
        return self


class Administration(_Model):
    allowed_networks: list[Network] = ["0.0.0.0/0", "::/0"]
    allowed_ports: list[Port] = []  # empty: every port the appliance listens on


class Syslog(_Model):
    enabled: v.Bool = False
    host: Host | None = None
    port: Port = 514
    transport: Literal["udp", "tcp"] = "udp"
    format: Literal["rfc5424", "rfc3164"] = "rfc5424"

    @model_validator(mode="after")
    def _needs_host(self):
        if self.enabled and not self.host:
            raise ValueError("host is required when syslog forwarding is enabled")
        return self


class LoginAgreement(_Model):
    enabled: v.Bool = False
    title: Annotated[str, Field(max_length=200)] = "Terms of use"
    text: Annotated[str, Field(max_length=20000)] = ""


class Smtp(_Model):
    host: Host | None = None
    port: Port = 25
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = None  # write-only; stored sealed
    sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "tether@localhost"
    admin_email: Annotated[str | None, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = None


class Connections(_Model):
    """What one source may hold and how long a connection may take to prove itself (issue 19)."""
    max_per_source: Annotated[int, Field(ge=1, le=100000)] = 2000  # room for a NAT of many jump clients
    handshake_timeout_seconds: Annotated[int, Field(ge=1, le=120)] = 10  # TCP accepted to TLS handshake done
    header_timeout_seconds: Annotated[int, Field(ge=1, le=600)] = 15  # to a complete request head


class Security(_Model):
    tls: Tls = Tls()
    administration: Administration = Administration()
    connections: Connections = Connections()
    syslog: Syslog = Syslog()
    login_agreement: LoginAgreement = LoginAgreement()
    smtp: Smtp = Smtp()


def _desk_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(/.*)?$", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


class SupportDesk(_Model):
    """The vendor's support desk this appliance opens incidents on by itself (DESK-09)."""
    enabled: v.Bool = False
    url: Annotated[str | None, AfterValidator(_desk_url)] = None
    token: str | None = None  # write-only; stored sealed
    verify_tls: v.Bool = True
    on_backup_failure: v.Bool = True

    @model_validator(mode="after")
    def _complete(self):
        if self.enabled and not self.url:
            raise ValueError("url is required when the support desk is enabled")
        return self


class Support(_Model):
    desk: SupportDesk = SupportDesk()


class Readiness(_Model):
    """The thresholds of the readiness audit (DR-01)."""
    backup_max_age_hours: Annotated[int, Field(ge=1, le=24 * 366)] = 24  # the latest site backup
    snapshot_max_age_days: Annotated[int, Field(ge=1, le=3660)] = 30  # the latest whole-appliance snapshot
    integration_pull_max_age_hours: Annotated[int, Field(ge=1, le=24 * 366)] = 48  # a backup an API account took
    sync_lag_max_seconds: Annotated[int, Field(ge=1, le=86400)] = 60  # failover: the backup behind the primary
    certificate_expiry_days: Annotated[int, Field(ge=1, le=3650)] = 30  # an assigned certificate expiring sooner


class Metrics(_Model):
    """Who may scrape /metrics (OPS-04) without a bearer token: these networks (empty: only a token of an
    API account holding the ``metrics`` permission)."""
    allowed_networks: list[Network] = []


class Monitoring(_Model):
    readiness: Readiness = Readiness()
    metrics: Metrics = Metrics()


def _endpoint(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+/?$", value):
        raise ValueError(f"{value!r} is not an http(s) URL of an S3 endpoint (scheme, host, optional port)")
    return value.rstrip("/")


def _prefix(value: str) -> str:
    if value and (not re.match(r"^[A-Za-z0-9._\-/]{1,200}$", value) or value.startswith("/") or "//" in value):
        raise ValueError("prefix: letters, digits, . _ - and inner slashes, at most 200 characters")
    return value if not value or value.endswith("/") else value + "/"


def _pem(value: str | None) -> str | None:
    if not value:
        return None
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(value.encode())
    except ValueError:
        raise ValueError("ca_pem: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    return value


class S3Bucket(_Model):
    """The S3-compatible bucket the site's objects can live in (OPS-06); the secret key is sealed."""
    endpoint_url: Annotated[str | None, AfterValidator(_endpoint)] = None
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")] | None = None
    region: Annotated[str, Field(pattern=r"^[a-z0-9\-]{1,40}$")] = "us-east-1"
    prefix: Annotated[str, AfterValidator(_prefix)] = ""
    access_key: Annotated[str, Field(max_length=256)] | None = None
    secret_key: Annotated[str, Field(max_length=1024)] | None = None  # write-only; stored sealed
    verify_tls: v.Bool = True
    ca_pem: Annotated[str, AfterValidator(_pem), Field(max_length=200000)] | None = None


class Storage(_Model):
    """Where the site's file store and recordings live: ``local`` disk or the ``s3`` bucket (OPS-06)."""
    backend: Literal["local", "s3"] = "local"
    s3: S3Bucket = S3Bucket()

    @model_validator(mode="after")
    def _complete(self):
        if self.backend == "s3" and not (self.s3.endpoint_url and self.s3.bucket and self.s3.access_key):
            raise ValueError("s3: endpoint_url, bucket and access_key are required when the backend is s3")
        return self


SECTIONS: dict[str, type[_Model]] = {"networking": Networking, "security": Security, "support": Support,
                                     "storage": Storage, "monitoring": Monitoring}
SEALED_FIELDS = {("security", "smtp", "password"), ("support", "desk", "token"), ("storage", "s3", "secret_key")}
MASK = "********"


class ApplianceSettings:
    """Reads and writes the settings sections; secrets are sealed on the way in
    and masked on the way out (``reveal`` gives the clear value to the code that
    needs it, such as the SMTP client)."""

    def __init__(self, engine: sa.Engine, box: SecretBox):
        self.engine = engine
        self.box = box

    def get(self, section: str):
        model = SECTIONS[section]
        raw = get_setting(self.engine, section) or {}
        return model.model_validate(_strip_sealed(section, raw))

    def public(self, section: str) -> dict:
        raw = get_setting(self.engine, section) or {}
        data = self.get(section).model_dump()
        for sec, sub, key in SEALED_FIELDS:
            if sec == section and raw.get(sub, {}).get(key):
                data[sub][key] = MASK
        return data

    def reveal(self, section: str, sub: str, key: str) -> str | None:
        raw = get_setting(self.engine, section) or {}
        sealed = raw.get(sub, {}).get(key)
        return self.box.unseal(sealed, f"{section}.{sub}.{key}").decode() if sealed else None

    def validate(self, section: str, data: dict):
        if section not in SECTIONS:
            raise Invalid(f"unknown settings section {section!r}", field="section")
        return v.parse_model(SECTIONS[section], data)

    def put(self, section: str, data: dict, conn: sa.Connection | None = None):
        model = self.validate(section, data)
        stored = model.model_dump()
        old = get_setting(self.engine, section) or {}
        for sec, sub, key in SEALED_FIELDS:
            if sec != section:
                continue
            value = stored[sub].get(key)
            if value == MASK or (value is None and key not in (data.get(sub) or {})):
                stored[sub][key] = old.get(sub, {}).get(key)  # unchanged
            elif value:
                stored[sub][key] = self.box.seal(value, f"{section}.{sub}.{key}")
        if conn is None:
            with self.engine.begin() as c:
                put_setting(c, section, stored)
        else:
            put_setting(conn, section, stored)
        return model


def _strip_sealed(section: str, raw: dict) -> dict:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for sec, sub, key in SEALED_FIELDS:
        if sec == section and sub in data:
            data[sub][key] = None
    return data
