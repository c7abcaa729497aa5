"""Signed site packages (SITE-04); the format is docs/formats/site-package.md.

A package is one JSON document:

    {"format": "tether-site-package/1",
     "manifest": {"site_name": ..., "edition": ..., "version": "X.Y.Z", "built_at": ...},
     "key_id": "<sha256 of the vendor's raw Ed25519 public key, hex>",
     "signature": "<base64 Ed25519 signature over the canonical manifest>"}

The canonical manifest is its JSON with sorted keys and no spaces, UTF-8.
The vendor signs with its Ed25519 private key (``tether-vendor``); an
appliance accepts a package only if the signature verifies under one of the
vendor keys it was provisioned to trust.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.core.errors import IntegrityError, Invalid
from tether.core.releases import Version

FORMAT = "tether-site-package/1"
EDITIONS = ("remote-support", "privileged-remote-access")
_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_PACKAGE_BYTES = 1 << 20


@dataclass(frozen=True)
class SitePackage:
    site_name: str
    edition: str
    version: str
    built_at: float
    key_id: str


def _canonical(manifest: dict) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def check_manifest(site_name: str, edition: str, version: str) -> None:
    if not _SITE_NAME.match(site_name or ""):
        raise Invalid("site_name must be 1-63 lower-case letters, digits or '-'", field="site_name")
    if edition not in EDITIONS:
        raise Invalid(f"edition must be one of {', '.join(EDITIONS)}", field="edition")
    v = Version.parse(version)
    if not v.has_patch:
        raise Invalid("a site package version is X.Y.Z", field="version")


def build(private_key: Ed25519PrivateKey, site_name: str, edition: str, version: str) -> bytes:
    check_manifest(site_name, edition, version)
    manifest = {"site_name": site_name, "edition": edition, "version": version, "built_at": round(time.time(), 3)}
    signature = private_key.sign(_canonical(manifest))
    doc = {"format": FORMAT, "manifest": manifest, "key_id": key_id(private_key.public_key()),
           "signature": base64.b64encode(signature).decode()}
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


def verify(data: bytes, trusted_keys: list[Ed25519PublicKey]) -> SitePackage:
    """Parse and verify a package; raise IntegrityError for anything not signed by a trusted key."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise IntegrityError("this file is too large to be a site package")
    try:
        doc = json.loads(data)
        assert isinstance(doc, dict)
    except (ValueError, AssertionError, UnicodeDecodeError):
        raise IntegrityError("this file is not a Tether site package (not a JSON package document)") from None
    if doc.get("format") != FORMAT:
        raise IntegrityError(f"unknown package format {doc.get('format')!r}; expected {FORMAT}")
    manifest, sig = doc.get("manifest"), doc.get("signature")
    if not isinstance(manifest, dict) or not sig or not isinstance(sig, str):
        raise IntegrityError("the site package is unsigned", hint="install only packages built by the vendor")
    try:
        signature = base64.b64decode(sig, validate=True)
    except ValueError:
        raise IntegrityError("the site package signature is malformed") from None
    for pub in trusted_keys:
        try:
            pub.verify(signature, _canonical(manifest))
            break
        except InvalidSignature:
            continue
    else:
        raise IntegrityError("the site package signature does not verify against a trusted vendor key",
                             hint="the package was altered or was not built by a vendor this appliance trusts")
    try:
        check_manifest(manifest.get("site_name"), manifest.get("edition"), manifest.get("version"))
    except Invalid as exc:
        raise IntegrityError(f"the signed manifest is invalid: {exc.message}") from None
    return SitePackage(manifest["site_name"], manifest["edition"], manifest["version"],
                       float(manifest.get("built_at", 0)), doc.get("key_id", ""))


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise Invalid("not a PEM public key", field="vendor_key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Invalid("the vendor key must be an Ed25519 public key", field="vendor_key")
    return key


def generate_vendor_key() -> tuple[bytes, bytes]:
    """Return (private PEM, public PEM) for a new vendor signing key."""
    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise Invalid("the vendor signing key must be an Ed25519 private key", field="key")
    return key
