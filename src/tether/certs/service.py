"""The certificate service: every administrative certificate action, shared
by the /appliance HTML pages, the JSON API and the ``tether cert`` CLI (one
function per action, one set of checks, one audit record each).

It owns the rules that span the certificate modules: names are unique, the
built-in certificate is never exported or deleted (CERT-01), only a
certificate with a private key can be assigned to an address, an assigned
certificate cannot be deleted, and every change to the assignments is
applied to the running listeners at once (CERT-06). The cryptography lives
in ``generate``, ``pending``, ``pkcs12`` and ``classify``; storage in
``store`` and ``assign``. It does not know HTTP or the command line.
"""

from __future__ import annotations

import re
import ssl
import threading
from typing import Any, Protocol, Sequence

import sqlalchemy as sa
from pydantic import BaseModel

from tether.appliance.store import certificates
from tether.core.audit import AuditLog
from tether.core.errors import Conflict, Invalid
from tether.core.paths import DataDir
from tether.core.shapes import of_table

from . import assign, pkcs12, tls
from .classify import describe, fingerprint
from .generate import DEFAULT_KEY_TYPE, SELF_SIGNED_DAYS, generate_self_signed, load_pem_certificates
from .pending import PendingRequests, certificate_requests
from .store import CertStore


class CertificateWarning(BaseModel):
    code: str
    message: str


class Certificate(BaseModel):
    """A certificate as ``CertificateService.describe`` presents it (an unreadable one has only the
    identity fields, its kind ``unreadable``, and a warning)."""
    id: int | None
    name: str | None
    builtin: bool
    has_private_key: bool
    addresses: list[str]
    kind: str
    chain: list[dict[str, Any]]
    warnings: list[CertificateWarning]
    issued_to: str | None = None
    issued_by: str | None = None
    subject: str | None = None
    issuer: str | None = None
    alt_names: list[str] | None = None
    not_before: str | None = None
    not_after: str | None = None
    serial: str | None = None
    fingerprint_sha256: str | None = None
    key: str | None = None


CertificateRequest = of_table(certificate_requests, "CertificateRequest", omit=("key_sealed",))


class Assignments(BaseModel):
    """Which certificate (id) each address presents, and the addresses there are to assign."""
    assignments: dict[str, int]
    addresses: list[str]


class Listing(Assignments):
    certificates: list[Certificate]
    requests: list[CertificateRequest]  # type: ignore[valid-type]


class Assigned(BaseModel):
    address: str
    id: int
    name: str
    assignments: dict[str, int]


class Host(Protocol):
    """What the service needs from the running appliance (``tether.runtime.Appliance``)."""

    engine: sa.Engine
    certs: CertStore
    audit: AuditLog
    listeners: list
    data: DataDir

    def hostname(self) -> str: ...
    def configured_addresses(self) -> list[str]: ...
    def refresh_certificates(self) -> None: ...


def _name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise Invalid("a name of 1 to 128 characters is required", field="name")
    return name


class CertificateService:
    def __init__(self, host: Host, pending: PendingRequests):
        self.h = host
        self.store = host.certs
        self.pending = pending
        self._lock = threading.RLock()

    # --- reading ---------------------------------------------------------------
    def listener_hosts(self) -> list[str]:
        return sorted({assign.host_key(lst.host) for lst in self.h.listeners})

    def addresses(self) -> list[str]:
        """The appliance's IP addresses a certificate can be assigned to:
        those it listens on and those configured under Networking."""
        found = set()
        for a in [*self.listener_hosts(), *self.h.configured_addresses()]:
            try:
                found.add(assign.normalize(a))
            except Invalid:
                continue
        return sorted(found - {"0.0.0.0", "::"})

    def served(self) -> dict[int, list[str]]:
        """Certificate id -> the addresses it is presented on (the built-in
        one on every listened address without an assignment)."""
        mapping = assign.load(self.h.engine)
        out = assign.by_certificate(mapping)
        default = [a for a in self.listener_hosts() if a not in mapping]
        if default:
            builtin_id = self.store.builtin()["id"]
            out[builtin_id] = sorted(set(out.get(builtin_id, [])) | set(default))
        return out

    def describe(self, row: dict, served: dict[int, list[str]] | None = None) -> dict:
        served = self.served() if served is None else served
        return describe(row, hostname=self.h.hostname(), addresses=served.get(row["id"], ()))

    def get(self, cert_id: int) -> dict:
        return self.describe(self.store.get(cert_id))

    def listing(self) -> dict:
        served = self.served()
        return {"certificates": [self.describe(r, served) for r in self.store.list()],
                "requests": self.pending.list(),
                "assignments": assign.load(self.h.engine),
                "addresses": self.addresses()}

    def csr(self, request_id: int) -> dict:
        return self.pending.get(request_id)

    # --- making and installing -------------------------------------------------
    def generate(self, actor: str, source_ip: str | None, *, name: str, fqdn: str | None = None,
                 alt_names: Sequence[str] = (), key_type: str = DEFAULT_KEY_TYPE,
                 days: int = SELF_SIGNED_DAYS) -> dict:
        """CERT-02: a self-signed certificate for the appliance's FQDN (default: its host name)."""
        name = _name(name)
        with self.h.engine.connect() as c:
            self._name_free(c, name)  # before the (slow) key generation; checked again when adding
        issued = generate_self_signed((fqdn or "").strip() or self.h.hostname(), alt_names, key_type, days=days)
        with self._lock, self.h.engine.begin() as c:
            self._name_free(c, name)
            cert_id = self.store.add(name, issued.cert_pem, issued.key_der, "", conn=c)
        return self._added(actor, source_ip, "cert.generate", cert_id)

    def request(self, actor: str, source_ip: str | None, *, name: str, fqdn: str | None = None,
                alt_names: Sequence[str] = (), key_type: str = DEFAULT_KEY_TYPE,
                organization: str | None = None) -> dict:
        """CERT-02: a key + CSR kept as a pending request until the CA answers."""
        req = self.pending.create(name, (fqdn or "").strip() or self.h.hostname(), list(alt_names), key_type,
                                  organization or None)
        self.h.audit.record(actor, "cert.request", req["name"], source_ip,
                            {"request_id": req["id"], "common_name": req["common_name"], "key_type": key_type})
        return req

    def delete_request(self, actor: str, source_ip: str | None, request_id: int) -> None:
        req = self.pending.get(request_id)
        self.pending.delete(request_id)
        self.h.audit.record(actor, "cert.request.delete", req["name"], source_ip, {"request_id": request_id})

    def install_answer(self, actor: str, source_ip: str | None, answer: str | bytes, chain: str | bytes = "",
                       name: str | None = None) -> dict:
        """CERT-02: the CA's answer, matched to its pending key; anything else is refused."""
        with self._lock:
            cert_id = self.pending.install(self.store, answer, chain, name or None)
        return self._added(actor, source_ip, "cert.install_answer", cert_id)

    def import_p12(self, actor: str, source_ip: str | None, data: bytes, password: str | bytes,
                   name: str) -> dict:
        """CERT-04: a .p12 and its password; a refused file changes nothing."""
        with self._lock:
            cert_id = pkcs12.import_certificate(self.store, data, password, _name(name))
        return self._added(actor, source_ip, "cert.import", cert_id)

    def export_p12(self, actor: str, source_ip: str | None, cert_id: int, passphrase: str, *,
                   include_cert: bool = True, include_key: bool = True,
                   include_chain: bool = True) -> tuple[str, bytes]:
        """CERT-03: (file name, PKCS#12 bytes); the built-in certificate is refused."""
        data = pkcs12.export_certificate(self.store, cert_id, passphrase, include_cert=include_cert,
                                         include_key=include_key, include_chain=include_chain)
        row = self.store.get(cert_id)
        self.h.audit.record(actor, "cert.export", row["name"], source_ip,
                            {"id": cert_id, "fingerprint_sha256": _fp(row), "certificate": include_cert,
                             "private_key": include_key, "chain": include_chain})
        return safe_filename(row["name"], f"certificate-{cert_id}", ".p12"), data

    # --- assignment and deletion -----------------------------------------------
    def assign(self, actor: str, source_ip: str | None, cert_id: int, address: str) -> dict:
        """CERT-06: ``address`` presents certificate ``cert_id`` from the next handshake on.
        Assigning the built-in certificate removes the address's assignment."""
        address = assign.normalize(address)
        known = self.addresses()
        if address not in known:
            raise Invalid(f"{address} is not one of this appliance's IP addresses", field="address",
                          hint=f"choose one of {', '.join(known) or '(none)'}, or add it under Networking")
        row = self.store.get(cert_id)
        key = self.store.private_key_der(row)
        if key is None:
            raise Invalid(f"certificate {row['name']!r} has no private key and cannot be presented", field="id",
                          hint="import it as a .p12 with its key, or install the CA's answer to a CSR made here")
        try:  # prove OpenSSL takes it before anything changes
            tls.load_identity(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), row["cert_pem"], row["chain_pem"] or "",
                              key, self.h.data.runtime_dir)
        except (ssl.SSLError, ValueError) as exc:
            raise Invalid(f"certificate {row['name']!r} cannot be used by the listeners: {exc}", field="id") from None
        with self._lock:
            mapping = assign.load(self.h.engine)
            before = mapping.get(address)
            if row["builtin"]:
                mapping.pop(address, None)
            else:
                mapping[address] = row["id"]
            with self.h.engine.begin() as c:
                assign.save(c, mapping)
            self.h.refresh_certificates()
        self.h.audit.record(actor, "cert.assign", address, source_ip,
                            {"id": row["id"], "name": row["name"], "fingerprint_sha256": _fp(row),
                             "previous_id": before})
        return {"address": address, "id": row["id"], "name": row["name"], "assignments": mapping}

    def delete(self, actor: str, source_ip: str | None, cert_id: int) -> None:
        with self._lock:
            row = self.store.get(cert_id)
            if row["builtin"]:
                raise Conflict("the built-in certificate cannot be deleted", field="id")
            where = assign.by_certificate(assign.load(self.h.engine)).get(cert_id)
            if where:
                raise Conflict(f"certificate {row['name']!r} is assigned to {', '.join(where)}", field="id",
                               hint="assign another certificate to "
                                    f"{'that address' if len(where) == 1 else 'those addresses'} first")
            with self.h.engine.begin() as c:
                c.execute(certificates.delete().where(certificates.c.id == cert_id))
        self.h.audit.record(actor, "cert.delete", row["name"], source_ip,
                            {"id": cert_id, "fingerprint_sha256": _fp(row)})

    def expiry_assignments(self) -> dict[int, list[str]]:
        """For CERT-07 reminders: certificate id -> the addresses it serves."""
        return self.served()

    # --- helpers ---------------------------------------------------------------
    def _name_free(self, c: sa.Connection, name: str) -> None:
        if c.execute(sa.select(certificates.c.id).where(certificates.c.name == name)).first():
            raise Conflict(f"a certificate named {name!r} already exists", field="name", hint="choose another name")

    def _added(self, actor: str, source_ip: str | None, action: str, cert_id: int) -> dict:
        desc = self.get(cert_id)
        details: dict[str, Any] = {"id": cert_id, "kind": desc["kind"],
                                   "fingerprint_sha256": desc.get("fingerprint_sha256"),
                                   "private_key": desc["has_private_key"]}
        self.h.audit.record(actor, action, desc["name"], source_ip, details)
        return desc


def safe_filename(name: str, fallback: str, suffix: str) -> str:
    """A download file name from a user-chosen name: ASCII letters, digits, ``._-`` only."""
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or fallback) + suffix


def _fp(row: dict) -> str | None:
    try:
        return fingerprint(load_pem_certificates(row["cert_pem"])[0])
    except Exception:  # noqa: BLE001 - an unreadable row has no fingerprint
        return None
