"""Classifying and describing certificates for listings (CERT-05).

Kinds, decided from the certificate alone:

    self-signed    issuer = subject, names a host
    ca-signed      issuer != subject, names a host
    intermediate   issuer != subject, names no host
    root           issuer = subject, names no host

"Names a host" is how the FQDN of CERT-05 is recognised: a subjectAltName
IP address, or a DNS name (from the subjectAltName, or from the subject CN
when there is no subjectAltName) that is a valid host name (a leading ``*.``
allowed) and either contains a dot or equals the appliance host name passed
in. So ``support.example.com``, ``*.example.com``, ``10.0.0.5`` and the
appliance's own short name count; ``Example Root CA`` or ``localhost``
alone do not. The built-in certificate (SAN ``127.0.0.1``) is self-signed.

Warnings (``code``: meaning):

    self_signed_in_use          a self-signed certificate is assigned to an address
    chain_missing_intermediate  a CA-signed certificate's chain lacks an issuer below the root
    chain_missing_root          a CA-signed certificate's chain has no root
    chain_multiple_roots        a chain holds more than one root
    chain_unrelated             a chain holds certificates off the certificate's path
    expired / expiring          past not-after / within ``expiring_days`` of it

Issuers are matched by name and signature, so a look-alike issuer is not
taken for the real one. This module reads; it never changes the store.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tether.core import clock
from tether.core import validate as v

from .generate import issued_by, load_pem_certificates

Kind = Literal["self-signed", "ca-signed", "intermediate", "root"]
EXPIRING_DAYS = 30


def alt_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in san if isinstance(n, (x509.DNSName, x509.IPAddress))]


def _common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def _is_host(name: str, hostname: str | None) -> bool:
    bare = name[2:] if name.startswith("*.") else name
    try:
        host = v.hostname(bare)
    except ValueError:
        return False
    return "." in host or (hostname is not None and host == hostname.lower().rstrip("."))


def names_host(cert: x509.Certificate, hostname: str | None = None) -> bool:
    """True if the certificate names a host (the FQDN rule in the module docstring)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        cn = _common_name(cert.subject)
        return cn is not None and _is_host(cn, hostname)
    if san.get_values_for_type(x509.IPAddress):
        return True
    return any(_is_host(n, hostname) for n in san.get_values_for_type(x509.DNSName))


def self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def classify(cert: x509.Certificate, hostname: str | None = None) -> Kind:
    host = names_host(cert, hostname)
    if self_issued(cert):
        return "self-signed" if host else "root"
    return "ca-signed" if host else "intermediate"


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def key_description(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ECDSA P-256", "secp384r1": "ECDSA P-384", "secp521r1": "ECDSA P-521"}.get(
            key.curve.name, f"ECDSA {key.curve.name}")
    return type(key).__name__.removeprefix("_")


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def info(cert: x509.Certificate, hostname: str | None = None) -> dict:
    """The listing fields of one certificate."""
    return {
        "kind": classify(cert, hostname),
        "issued_to": _common_name(cert.subject) or cert.subject.rfc4514_string(),
        "issued_by": _common_name(cert.issuer) or cert.issuer.rfc4514_string(),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "alt_names": alt_names(cert),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "serial": format(cert.serial_number, "X"),
        "fingerprint_sha256": fingerprint(cert),
        "key": key_description(cert),
    }


def _warn(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def chain_warnings(cert: x509.Certificate, chain: Sequence[x509.Certificate], kind: Kind) -> list[dict]:
    """Warnings about the chain stored with ``cert``."""
    warnings: list[dict] = []
    chain = [c for c in chain if c != cert]
    roots = [c for c in chain if self_issued(c)]
    if kind == "ca-signed":
        path, current, pool = [], cert, list(chain)
        while not (current is not cert and self_issued(current)):
            parent = next((c for c in pool if issued_by(current, c)), None)
            if parent is None:
                break
            path.append(parent)
            pool.remove(parent)
            current = parent
        complete = current is not cert and self_issued(current)
        if not complete:
            missing = current.issuer.rfc4514_string()
            if roots or current is cert:
                warnings.append(_warn("chain_missing_intermediate",
                                      f"the chain lacks the intermediate certificate {missing!r} that issued "
                                      f"{current.subject.rfc4514_string()!r}; clients may not trust the certificate"))
            if not roots:
                warnings.append(_warn("chain_missing_root",
                                      "the chain does not end in a root certificate"
                                      + (f" (missing: {missing!r})" if current is not cert else "")))
        if not complete:  # what sits above the gap (up to a root) is not unrelated
            pool = [c for c in pool if not _reaches_root(c, pool)]
        if pool:
            warnings.append(_warn("chain_unrelated", "the chain holds certificates that are not on this "
                                  "certificate's path: " + ", ".join(repr(c.subject.rfc4514_string()) for c in pool)))
    if len(roots) > 1:
        warnings.append(_warn("chain_multiple_roots",
                              f"the chain holds {len(roots)} root certificates; it must end in exactly one"))
    return warnings


def _reaches_root(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> bool:
    seen = [cert]
    while not self_issued(cert):
        cert = next((c for c in pool if c not in seen and issued_by(cert, c)), None)
        if cert is None:
            return False
        seen.append(cert)
    return True


def describe(row: dict, *, hostname: str | None = None, addresses: Sequence[str] = (),
             now: dt.datetime | None = None, expiring_days: int = EXPIRING_DAYS) -> dict:
    """A listing entry for a ``certificates`` row: id, name, builtin, the
    ``info`` fields, ``has_private_key``, ``addresses`` (its IP assignments),
    ``chain`` (``info`` of each chain certificate) and ``warnings``."""
    now = now or clock.now_utc()
    base = {"id": row.get("id"), "name": row.get("name"), "builtin": bool(row.get("builtin")),
            "has_private_key": bool(row.get("key_sealed")), "addresses": list(addresses)}
    try:
        cert = load_pem_certificates(row["cert_pem"])[0]
        chain = load_pem_certificates(row["chain_pem"]) if (row.get("chain_pem") or "").strip() else []
        desc = base | info(cert, hostname) | {"chain": [info(c, hostname) for c in chain]}
    except Exception:  # noqa: BLE001 - one bad row must not break the listing
        return base | {"kind": "unreadable", "chain": [],
                       "warnings": [_warn("unreadable", "the stored certificate does not parse")]}
    warnings = []
    if desc["kind"] == "self-signed" and addresses:
        warnings.append(_warn("self_signed_in_use", "a self-signed certificate is in use on "
                              f"{', '.join(addresses)}: it is for temporary use only, as clients trust it only if "
                              "pinned; install a CA-signed certificate"))
    warnings += chain_warnings(cert, chain, desc["kind"])
    left = cert.not_valid_after_utc - now
    if left <= dt.timedelta(0):
        warnings.append(_warn("expired", f"the certificate expired on {desc['not_after']}"))
    elif left <= dt.timedelta(days=expiring_days):
        warnings.append(_warn("expiring", f"the certificate expires on {desc['not_after']} "
                              f"(in {left.days} days)"))
    desc["warnings"] = warnings
    return desc


def summary_lines(desc: dict) -> list[str]:
    """The description as text lines, for the CLI and the HTML listing."""
    lines = [f"{desc['name']} (id {desc['id']}): {desc['kind']}" + (", built-in" if desc["builtin"] else "")]
    if desc["kind"] != "unreadable":
        lines += [f"  Issued To: {desc['issued_to']}", f"  Issued By: {desc['issued_by']}",
                  f"  Alternative names: {', '.join(desc['alt_names']) or '-'}",
                  f"  Valid: {desc['not_before']} to {desc['not_after']}",
                  f"  SHA-256 fingerprint: {desc['fingerprint_sha256']}"]
    lines.append(f"  Private key: {'yes' if desc['has_private_key'] else 'no'}")
    if desc["addresses"]:
        lines.append(f"  Assigned to: {', '.join(desc['addresses'])}")
    lines += [f"  Chain: {c['issued_to']} ({c['kind']})" for c in desc.get("chain", [])]
    lines += [f"  Warning: {w['message']}" for w in desc["warnings"]]
    return lines
