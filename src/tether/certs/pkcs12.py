"""PKCS#12 (.p12) export and import of certificates (CERT-03, CERT-04).

Export writes PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for both the key and
the certificate bags and a SHA-256 MAC, which OpenSSL 1.1.1+ and current
platform key stores read. Which parts go in (certificate, private key,
chain) is the caller's choice. The built-in certificate never leaves the
appliance (CERT-01).

Import returns the certificate, its key (if any) and chain, or refuses with
IntegrityError (wrong password, truncated or malformed file, key that does
not match the certificate) or Invalid (no certificate, unsupported key,
file too large). Before any decryption the file's DER structure is walked:
a file that does not parse is refused as damaged, and a key-derivation
iteration count above ``MAX_KDF_ROUNDS`` is refused so a hostile file cannot
pin the CPU (counts inside encrypted bags are not visible to this check).
Nothing here writes to the store except ``import_certificate``, which adds
one row only after everything checked out.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from tether.core.errors import Conflict, IntegrityError, Invalid

from .generate import issued_by, key_der, load_pem_certificates, order_chain, pem, spki_sha256
from .store import CertStore

KDF_ROUNDS = 600_000
MAX_KDF_ROUNDS = 10_000_000
MIN_PASSPHRASE = 8
MAX_P12_BYTES = 1 << 20
_MAX_DEPTH = 48


@dataclass(frozen=True)
class Imported:
    cert_pem: str
    chain_pem: str
    key_der: bytes | None
    friendly_name: str | None


def _bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def build_p12(cert_pem: str, chain_pem: str, key_der_: bytes | None, passphrase: str | bytes, *,
              name: str | None = None, include_cert: bool = True, include_key: bool = True,
              include_chain: bool = True, kdf_rounds: int = KDF_ROUNDS) -> bytes:
    """A passphrase-protected PKCS#12 holding the chosen parts."""
    secret = _bytes(passphrase)
    if len(secret) < MIN_PASSPHRASE:
        raise Invalid(f"the passphrase must have at least {MIN_PASSPHRASE} characters", field="passphrase")
    if not (include_cert or include_key or include_chain):
        raise Invalid("nothing to export: include the certificate, the private key or the chain")
    if include_key and not key_der_:
        raise Invalid("this certificate has no private key to export", field="include_key",
                      hint="export without the key (--no-key)")
    cert = load_pem_certificates(cert_pem)[0] if include_cert else None
    key = serialization.load_der_private_key(key_der_, password=None) if include_key else None
    cas = load_pem_certificates(chain_pem) if include_chain and chain_pem.strip() else None
    if cert is None and key is None and not cas:
        raise Invalid("this certificate has no chain to export", field="include_chain")
    enc = (serialization.PrivateFormat.PKCS12.encryption_builder()
           .kdf_rounds(kdf_rounds)
           .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
           .hmac_hash(hashes.SHA256())
           .build(secret))
    return pkcs12.serialize_key_and_certificates(name.encode() if name else None, key, cert, cas, enc)


def export_certificate(store: CertStore, cert_id: int, passphrase: str | bytes, *, include_cert: bool = True,
                       include_key: bool = True, include_chain: bool = True,
                       kdf_rounds: int = KDF_ROUNDS) -> bytes:
    """Export certificate ``cert_id`` from the store; refuses the built-in one."""
    row = store.get(cert_id)
    if row["builtin"]:
        raise Invalid("the built-in certificate cannot be exported", field="id",
                      hint="generate, or install a CA-signed, certificate of your own and export that")
    return build_p12(row["cert_pem"], row["chain_pem"] or "", store.private_key_der(row), passphrase,
                     name=row["name"], include_cert=include_cert, include_key=include_key,
                     include_chain=include_chain, kdf_rounds=kdf_rounds)


def import_p12(data: bytes, password: str | bytes) -> Imported:
    """Read a .p12: (certificate, chain, key) or a clear refusal."""
    if not data:
        raise IntegrityError("the file is empty")
    if len(data) > MAX_P12_BYTES:
        raise Invalid("the file is larger than 1 MiB; a PKCS#12 certificate file is much smaller", field="file")
    try:
        rounds = scan_der(data)
    except ValueError as exc:
        raise IntegrityError(f"the file is not a valid PKCS#12 file ({exc})",
                             hint="give the .p12/.pfx file exactly as exported, in binary form") from None
    if rounds > MAX_KDF_ROUNDS:
        raise Invalid(f"the file asks for {rounds} key-derivation rounds; at most {MAX_KDF_ROUNDS} are accepted",
                      field="file")
    p12 = _load(data, _bytes(password))
    try:
        return _unpack(p12)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise Invalid("the file holds a certificate or key this appliance cannot use", field="file") from None


def _unpack(p12: pkcs12.PKCS12KeyAndCertificates) -> Imported:
    key = p12.key
    certs = ([p12.cert.certificate] if p12.cert else []) + [c.certificate for c in p12.additional_certs]
    if not certs:
        raise Invalid("the file holds no certificate", field="file",
                      hint="export the certificate together with its key")
    if key is not None:
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise Invalid("unsupported private key type (use RSA or ECDSA)", field="file")
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
            raise Invalid(f"an RSA key of {key.key_size} bits is too weak (2048 at least)", field="file")
        want = spki_sha256(key.public_key())
        leaf = next((c for c in certs if spki_sha256(c.public_key()) == want), None)
        if leaf is None:
            raise IntegrityError("the private key in the file does not match its certificate",
                                 hint="export the certificate and its own key together")
    else:
        leaf = p12.cert.certificate if p12.cert else _lowest(certs)
    chain = order_chain(leaf, [c for c in certs if c != leaf])
    name = p12.cert.friendly_name if p12.cert and p12.cert.friendly_name else None
    return Imported(pem([leaf]), pem(chain), key_der(key) if key is not None else None,
                    name.decode("utf-8", "replace") if name else None)


def import_certificate(store: CertStore, data: bytes, password: str | bytes, name: str) -> int:
    """Import a .p12 into the store under ``name``; returns the new id. A
    refused file changes nothing."""
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise Invalid("a name of 1 to 128 characters is required", field="name")
    imported = import_p12(data, password)
    if any(r["name"] == name for r in store.list()):
        raise Conflict(f"a certificate named {name!r} already exists", field="name", hint="choose another name")
    return store.add(name, imported.cert_pem, imported.key_der, imported.chain_pem)


def _load(data: bytes, secret: bytes):
    attempts = [secret, None] if not secret else [secret]
    for attempt in attempts:
        try:
            return pkcs12.load_pkcs12(data, attempt)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - any decoder failure (even a Rust panic) is a refusal
            continue
    raise IntegrityError("the password is wrong, or the file is damaged",
                         hint="check the passphrase the file was exported with")


def _lowest(certs: list[x509.Certificate]) -> x509.Certificate:
    """The certificate that issued none of the others (the end of the path)."""
    for cert in certs:
        if not any(other is not cert and issued_by(other, cert) for other in certs):
            return cert
    return certs[0]


def scan_der(data: bytes) -> int:
    """Walk a PKCS#12's BER/DER structure; raise ValueError if it does not
    parse, else return the largest iteration count seen (an INTEGER right
    after an OCTET STRING salt, as in PBKDF2 and PKCS#12 PBE parameters and
    MacData)."""
    found: list[int] = [0]
    tag, start, length = _header(data, 0, len(data))
    if tag != 0x30:
        raise ValueError("it does not start with an ASN.1 SEQUENCE")
    if length is not None and start + length != len(data):
        raise ValueError("it has bytes after its end")
    end, items = _items(data, start, start + length if length is not None else len(data),
                        length is None, 0, found)
    if length is None and end != len(data):
        raise ValueError("it has bytes after its end")
    if not items or items[0][0] != 0x02 or data[items[0][1]:items[0][2]] != b"\x03":
        raise ValueError("it is not PKCS#12 version 3")
    return max(found)


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int | None]:
    if pos + 2 > end:
        raise ValueError("it is truncated")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while True:
            if pos >= end:
                raise ValueError("it is truncated")
            pos += 1
            if not data[pos - 1] & 0x80:
                break
    if pos >= end:
        raise ValueError("it is truncated")
    first = data[pos]
    pos += 1
    if first == 0x80:
        return tag, pos, None
    if first & 0x80:
        n = first & 0x7F
        if n > 4 or pos + n > end:
            raise ValueError("it is truncated")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > end:
        raise ValueError("it is truncated")
    return tag, pos, length


def _items(data: bytes, pos: int, end: int, indefinite: bool, depth: int,
           found: list[int]) -> tuple[int, list[tuple[int, int, int]]]:
    if depth > _MAX_DEPTH:
        raise ValueError("it is nested too deeply")
    items: list[tuple[int, int, int]] = []
    while pos < end:
        if indefinite and data[pos:pos + 2] == b"\x00\x00":
            _pairs(data, items, found)
            return pos + 2, items
        tag, start, length = _header(data, pos, end)
        if length is None:
            if not tag & 0x20:
                raise ValueError("it has an indefinite-length primitive")
            pos, _ = _items(data, start, end, True, depth + 1, found)
            items.append((tag, start, pos - 2))
            continue
        stop = start + length
        if tag & 0x20:
            _items(data, start, stop, False, depth + 1, found)
        elif tag == 0x04 and length > 2 and data[start] == 0x30:
            nested: list[int] = []
            try:  # an OCTET STRING wrapping DER (authSafe, bags); ciphertext will not parse
                _items(data, start, stop, False, depth + 1, nested)
                found.extend(nested)
            except ValueError:
                pass
        items.append((tag, start, stop))
        pos = stop
    if indefinite:
        raise ValueError("it is truncated")
    _pairs(data, items, found)
    return pos, items


def _pairs(data: bytes, items: list[tuple[int, int, int]], found: list[int]) -> None:
    for (tag_a, _, _), (tag_b, start, stop) in zip(items, items[1:]):
        if tag_a == 0x04 and tag_b == 0x02:
            found.append(int.from_bytes(data[start:stop], "big", signed=True))
