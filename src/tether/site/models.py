"""Input models of the site's configuration (SITE-01, SITE-02): what an
administrator may send for each kind of named thing and for each settings
section. The JSON API, the HTML forms and the CLI all validate through these
models (``tether.core.validate.parse_model``), so every face gives the same
error naming the same field."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tether.core import netaddr
from tether.core import validate as V
from tether.core.errors import Invalid
from tether.core.validate import Bool, parse_model

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]
Text = Annotated[str, Field(max_length=512)]
Host = Annotated[str, Field(min_length=1, max_length=253)]
EVENT_TYPES = ("login", "login.failed", "session.start", "session.end", "backup.taken", "user.create",
               "user.update", "user.delete", "config.change", "file.upload", "file.delete")
REP_PERMISSIONS = ("session.start", "session.transfer", "session.share", "jump.use", "jump.deploy",
                   "file.transfer", "command.shell", "recording.view", "presentation.give", "canned.use")
PROTOCOLS = ("rdp", "ssh", "vnc", "shell", "web")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def parse(model: type[BaseModel], data: object) -> BaseModel:
    """``parse_model``, and a whole-model check that says "field: ..." names that field."""
    try:
        return parse_model(model, data)
    except Invalid as exc:
        details = getattr(exc, "details", None)
        head, sep, _ = (details[0]["message"] if details else "").partition(": ")
        if sep and re.fullmatch(r"[a-z_]+", head):
            exc.field = f"{exc.field}.{head}" if exc.field else head
            exc.message = f"{exc.field}: {details[0]['message'].partition(': ')[2]}"
        raise


def _host(v: str | None) -> str | None:
    return None if v is None else V.host(v)


class Team(Strict):
    name: Name
    description: Text = ""
    members: list[TeamMember] = []


class TeamMember(Strict):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    role: Literal["member", "lead", "manager"] = "member"


class SecurityProvider(Strict):
    name: Name
    kind: Literal["ldap", "radius", "kerberos"]
    enabled: Bool = True
    priority: Annotated[int, Field(ge=0, le=1000)] = 10
    host: str | None = None
    port: V.PortNumber | None = None
    tls_mode: Literal["none", "starttls", "ldaps"] | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=120)] = 10
    bind_dn: Annotated[str, Field(max_length=512)] | None = None
    bind_password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    search_base: Annotated[str, Field(max_length=512)] | None = None
    user_filter: Annotated[str, Field(max_length=512)] | None = None
    attr_username: Annotated[str, Field(max_length=64)] | None = None
    attr_display_name: Annotated[str, Field(max_length=64)] | None = None
    attr_email: Annotated[str, Field(max_length=64)] | None = None
    attr_groups: Annotated[str, Field(max_length=64)] | None = None
    radius_secret: Annotated[str, Field(min_length=8, max_length=256)] | None = None
    realm: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9.-]{0,252}$")] | None = None
    keytab: Annotated[str, Field(min_length=4, max_length=1_400_000)] | None = None  # base64
    # LDAP: the CA bundle (PEM) to trust for StartTLS/LDAPS; stored as the provider's file (the keytab column)
    ca_certificate: Annotated[str, Field(min_length=20, max_length=1_000_000)] | None = Field(None, exclude=True)
    # RADIUS: the NAS-Identifier sent in each Access-Request; stored in the bind_dn column (RADIUS has no bind)
    nas_identifier: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(None, exclude=True)

    @field_validator("host")
    @classmethod
    def _h(cls, v):
        """One server, or several comma-separated in order of preference (LDAP, RADIUS)."""
        if v is None:
            return None
        hosts = [h.strip() for h in v.split(",")]
        if not all(hosts):
            raise ValueError("host: give one server or several separated by commas")
        joined = ",".join(V.host(h) for h in hosts)
        if len(joined) > 253:
            raise ValueError("host: at most 253 characters in all")
        return joined

    @field_validator("port")
    @classmethod
    def _port(cls, v):
        return None if v is None else V.port(v)

    @model_validator(mode="after")
    def _by_kind(self):
        need = {"ldap": ("host", "search_base"), "radius": ("host",), "kerberos": ("realm",)}[self.kind]
        for f in need:
            if getattr(self, f) in (None, ""):
                raise ValueError(f"{f}: required for a {self.kind} provider")
        if self.ca_certificate is not None:
            if self.kind != "ldap":
                raise ValueError("ca_certificate: only an LDAP provider takes a CA certificate")
            self.keytab = _pem_bundle(self.ca_certificate)
        if self.kind == "ldap" and self.user_filter:
            _ldap_filter(self.user_filter)
        if self.kind == "ldap":
            self.port = self.port or (636 if self.tls_mode == "ldaps" else 389)
            self.tls_mode = self.tls_mode or "starttls"
            self.attr_username = self.attr_username or "sAMAccountName"
            self.attr_display_name = self.attr_display_name or "displayName"
            self.attr_email = self.attr_email or "mail"
            self.attr_groups = self.attr_groups or "memberOf"
            self.user_filter = self.user_filter or "(objectClass=person)"
        elif self.kind == "radius":
            self.port = self.port or 1812
            if self.nas_identifier is not None:
                self.bind_dn = self.nas_identifier
        if self.nas_identifier is not None and self.kind != "radius":
            raise ValueError("nas_identifier: only a RADIUS provider sends a NAS identifier")
        return self


def _ldap_filter(text: str) -> None:
    """A user filter the directory will accept: an RFC 4515 filter in parentheses (parsed by ldap3)."""
    from ldap3.core.exceptions import LDAPException
    from ldap3.operation.search import parse_filter

    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError("user_filter: an LDAP filter in parentheses, e.g. (objectClass=person)")
    try:
        parse_filter(f"(&{text}(cn=x))", None, False, True, None, False)
    except LDAPException:
        raise ValueError(f"user_filter: {text!r} is not a valid LDAP filter (RFC 4515)") from None


def _pem_bundle(text: str) -> str:
    """A PEM bundle of CA certificates (checked to parse), base64 as the provider's file is stored."""
    import base64

    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise ValueError("ca_certificate: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    if not certs:
        raise ValueError("ca_certificate: not a PEM certificate (-----BEGIN CERTIFICATE-----)")
    return base64.b64encode(text.strip().encode() + b"\n").decode()


class PolicyMember(Strict):
    kind: Literal["user", "team", "provider_group"]
    username: str | None = None
    team: str | None = None
    provider: str | None = None
    group_name: Annotated[str, Field(max_length=256)] | None = None

    @model_validator(mode="after")
    def _shape(self):
        need = {"user": ("username",), "team": ("team",), "provider_group": ("provider", "group_name")}[self.kind]
        for f in need:
            if not getattr(self, f):
                raise ValueError(f"{f}: required for a member of kind {self.kind}")
        return self


class GroupPolicy(Strict):
    name: Name
    description: Text = ""
    priority: Annotated[int, Field(ge=0, le=1000)] = 10
    permissions: list[Literal[REP_PERMISSIONS]] = []  # type: ignore[valid-type]
    members: list[PolicyMember] = []


class Jumpoint(Strict):
    name: Name
    description: Text = ""
    hostname: Host
    enabled: Bool = True
    protocols: list[Literal[PROTOCOLS]] = ["rdp", "ssh"]  # type: ignore[valid-type]
    allowed_networks: list[str] = []
    max_sessions: Annotated[int, Field(ge=1, le=10000)] = 50

    _h = field_validator("hostname")(classmethod(lambda cls, v: V.host(v)))
    _n = field_validator("allowed_networks")(classmethod(lambda cls, v: [V.ip_network(x) for x in v]))


class JumpClientGroup(Strict):
    name: Name
    description: Text = ""
    allow_unattended: Bool = False
    jumpoint: str | None = None


class JumpClient(Strict):
    name: Name
    hostname: Host
    group_name: str | None = None
    os: Annotated[str, Field(min_length=1, max_length=64)] = "windows"
    public_ip: str | None = None
    comments: Text = ""
    last_seen_at: float | None = None

    _h = field_validator("hostname")(classmethod(lambda cls, v: V.host(v)))
    _ip = field_validator("public_ip")(classmethod(lambda cls, v: None if v is None else V.ip_address(v)))


class Language(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]
    label: Annotated[str, Field(min_length=1, max_length=64)]
    enabled: Bool = True


class EventTarget(Strict):
    name: Name
    kind: Literal["webhook", "email"]
    enabled: Bool = True
    url: Annotated[str, Field(max_length=2048)] | None = None
    hmac_secret: Annotated[str, Field(min_length=16, max_length=256)] | None = None
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    event_types: Annotated[list[Literal[EVENT_TYPES]], Field(min_length=1)]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _shape(self):
        if self.kind == "webhook":
            if not self.url or not re.match(r"^https?://[^\s/]+", self.url):
                raise ValueError("url: a webhook needs an http:// or https:// URL")
        elif not self.recipients:
            raise ValueError("recipients: an email target needs at least one address")
        return self


class CannedMessage(Strict):
    name: Name
    category: Annotated[str, Field(max_length=64)] = "General"
    body: Annotated[str, Field(min_length=1, max_length=8000)]
    team: str | None = None


class SurveyQuestion(Strict):
    kind: Literal["text", "choice", "rating"]
    text: Annotated[str, Field(min_length=1, max_length=512)]
    choices: list[Annotated[str, Field(min_length=1, max_length=128)]] = []
    required: Bool = False

    @model_validator(mode="after")
    def _choices(self):
        if self.kind == "choice" and len(self.choices) < 2:
            raise ValueError("choices: a choice question needs at least two choices")
        return self


class ExitSurvey(Strict):
    name: Name
    audience: Literal["customer", "representative"] = "customer"
    enabled: Bool = True
    title: Annotated[str, Field(min_length=1, max_length=256)]
    questions: Annotated[list[SurveyQuestion], Field(min_length=1)]


class Presentation(Strict):
    name: Name
    title: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=8000)] = ""
    presenter: str
    scheduled_at: float | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=1440)] = 60
    attendees: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    file: str | None = None
    status: Literal["draft", "scheduled", "held", "cancelled"] = "draft"

    @model_validator(mode="after")
    def _sched(self):
        if self.status == "scheduled" and self.scheduled_at is None:
            raise ValueError("scheduled_at: a scheduled presentation needs a start time")
        return self


Team.model_rebuild()


# --- settings sections (one JSON document each, in site_settings) -----------------------------
class SecuritySettings(Strict):
    password_min_length: Annotated[int, Field(ge=8, le=128)] = 12
    password_max_age_days: Annotated[int, Field(ge=0, le=3650)] = 0
    lockout_threshold: Annotated[int, Field(ge=1, le=100)] = 5
    lockout_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    session_idle_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    require_two_factor: Bool = False
    rep_allowed_networks: list[str] = ["0.0.0.0/0", "::/0"]
    login_banner: Annotated[str, Field(max_length=4000)] = ""

    _n = field_validator("rep_allowed_networks")(classmethod(lambda cls, v: [V.ip_network(x) for x in v]))


class JumpClientSettings(Strict):
    connection_rate_per_second: Annotated[int, Field(ge=1, le=300)] = 50  # CL-04
    heartbeat_seconds: Annotated[int, Field(ge=5, le=600)] = 30
    offline_after_days: Annotated[int, Field(ge=1, le=365)] = 30
    uninstall_after_days: Annotated[int, Field(ge=0, le=3650)] = 0
    statistics: list[Literal["cpu", "memory", "disk", "uptime", "console_user"]] = ["cpu", "memory", "uptime"]


class DnsSwing(Strict):
    """FO-07 DNS swing: an RFC 2136 update, signed with TSIG, of the site's A record."""
    enabled: Bool = False
    server: str | None = None  # the authoritative server's address
    port: V.PortNumber = 53
    zone: str | None = None  # e.g. example.com.
    record: str | None = None  # e.g. support.example.com.
    ttl: Annotated[int, Field(ge=1, le=86400)] = 30
    tsig_name: str | None = None  # the key's secret is FailoverSettings.dns_tsig_secret (write-only)
    tsig_algorithm: Literal["hmac-sha256", "hmac-sha512", "hmac-sha1"] = "hmac-sha256"
    address: str | None = None  # this appliance's address for the record (default: its own peer address)

    _s = field_validator("server", "address")(classmethod(lambda cls, v: None if v is None else V.ip_address(v)))
    _p = field_validator("port")(classmethod(lambda cls, v: V.port(v)))


def _etcd_endpoint(v: str) -> str:
    m = re.fullmatch(r"(https?)://(\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+):(\d{1,5})/?", str(v).strip())
    if not m:
        raise ValueError(f"{v!r} is not an etcd client URL: write http(s)://HOST:PORT, e.g. http://10.0.0.7:2379")
    host = V.host(m[2].strip("[]"))
    port = V.port(int(m[3]))
    return netaddr.url(m[1], host, port)


class Witness(Strict):
    """FO-11: an etcd cluster (three members: the two appliances and one more machine) whose lease the
    primary must hold to serve clients and take writes (tether.failover.witness; docs/formats/witness.md)."""
    enabled: Bool = False
    endpoints: list[str] = []  # etcd client URLs, tried in order, e.g. http://10.0.0.7:2379
    lease_ttl_seconds: Annotated[int, Field(ge=0, le=600)] = 0  # 0: the primary timeout, 2 to 30 s
    margin_seconds: Annotated[float, Field(ge=0, le=300)] = 0  # 0: a quarter of the TTL, at least 1 s
    key: Annotated[str, Field(pattern=r"^/[!-~]{1,255}$")] | None = None  # default /tether/<site name>/primary
    ca_file: str | None = None  # PEM file on this appliance that verifies https endpoints (default: system CAs)

    _e = field_validator("endpoints")(classmethod(lambda cls, v: [_etcd_endpoint(x) for x in v]))

    @model_validator(mode="after")
    def _shape(self):
        if self.enabled and not self.endpoints:
            raise ValueError("endpoints: a witness needs at least one etcd endpoint (all three members: best)")
        if self.lease_ttl_seconds and self.lease_ttl_seconds < 2:
            raise ValueError("lease_ttl_seconds: at least 2 (etcd's shortest lease), or 0 for the primary timeout")
        if self.lease_ttl_seconds and self.margin_seconds and self.margin_seconds * 2 > self.lease_ttl_seconds:
            raise ValueError("margin_seconds: at most half the lease TTL (the primary must renew within the rest)")
        if self.ca_file is not None and not self.ca_file.startswith("/"):
            raise ValueError("ca_file: an absolute path of a PEM file on this appliance")
        return self


class FailoverSettings(Strict):
    """This appliance's own failover settings (never synced to the peer, FO-03), used by
    tether.failover: backup operations and the sync mode, interval and bandwidth (FO-02);
    automatic failover with its primary timeout and connectivity tests (FO-05); traffic
    swing (FO-07); the etcd witness (FO-11)."""
    enabled: Bool = False
    role: Literal["none", "primary", "backup"] = "none"
    peer_host: str | None = None
    peer_port: V.PortNumber = 443
    backup_operations_enabled: Bool = False
    sync_mode: Literal["continuous", "interval"] = "continuous"  # interval: catch up every sync_interval_minutes
    sync_interval_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    sync_bandwidth_limit_kbps: V.Natural = 0
    sync_commit: Literal["async", "sync"] = "async"  # sync: a change is acknowledged once the backup applied it
    sync_fallback: Literal["strict", "fallback"] = "fallback"  # when the backup does not confirm in time
    sync_timeout_ms: Annotated[int, Field(ge=50, le=60000)] = 2000
    automatic_failover: Bool = False
    primary_timeout_seconds: Annotated[int, Field(ge=3, le=3600)] = 60
    connectivity_test_ips: list[str] = []
    connectivity_test_method: Literal["tcp", "icmp"] = "tcp"
    connectivity_test_port: V.PortNumber = 443  # for tcp: a connect to IP:port that is answered (even refused) counts
    shared_ips: list[str] = []
    nat_hook: str | None = None  # an executable run as HOOK OLD_ADDRESS NEW_ADDRESS after a takeover
    nat_hook_timeout_seconds: Annotated[int, Field(ge=1, le=600)] = 30
    dns_swing: DnsSwing = DnsSwing()
    dns_tsig_secret: str | None = None  # base64, as in BIND's key statement; write-only (never returned)
    witness: Witness = Witness()

    _h = field_validator("peer_host")(classmethod(lambda cls, v: _host(v)))
    _p = field_validator("peer_port", "connectivity_test_port")(classmethod(lambda cls, v: V.port(v)))
    _t = field_validator("connectivity_test_ips", "shared_ips")(classmethod(lambda cls, v: [V.ip_address(x) for x in v]))


class PreSharedKey(Strict):
    psk: Annotated[str | None, Field(min_length=32, max_length=256)] = None


class EventSettings(Strict):
    retry_base_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 10.0
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    mail_relay_host: str | None = None
    mail_relay_port: V.PortNumber = 25
    mail_sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "tether@localhost"


class PublicPortal(Strict):
    enabled: Bool = True
    hostname: str | None = None
    title: Annotated[str, Field(min_length=1, max_length=128)] = "Support"
    welcome_text: Annotated[str, Field(max_length=4000)] = "Welcome. Enter your session key to start."
    require_name: Bool = True
    require_issue: Bool = False
    issue_categories: list[Annotated[str, Field(min_length=1, max_length=64)]] = []
    show_representative_list: Bool = True
    allow_session_keys: Bool = True


class Branding(Strict):
    company_name: Annotated[str, Field(min_length=1, max_length=128)] = "Support"
    client_window_title: Annotated[str, Field(max_length=128)] = "Remote support"
    greeting: Annotated[str, Field(max_length=2000)] = "A support representative will be with you shortly."
    waiting_message: Annotated[str, Field(max_length=2000)] = "Please wait."
    session_end_message: Annotated[str, Field(max_length=2000)] = "Thank you."
    accent_color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = "#15314b"


class FileStoreSettings(Strict):
    max_upload_bytes: Annotated[int, Field(ge=1, le=1 << 42)] = 4 << 30
