"""Writing a small age file for a passphrase with a FIXED scrypt work factor.

Why this exists: pyrage (the age library we use everywhere else) calibrates
the scrypt work factor to about one second of CPU, so the memory it needs
swings between 128 MiB and 512 MiB from one call to the next, and a backup
sealed with 2^19 needs 512 MiB to open. The backups' memory budget (PERF-05)
needs a fixed cost. This module writes exactly one kind of file — the
one-stanza ``scrypt`` recipient of the age v1 format
(https://age-encryption.org/v1), holding a plaintext of at most one STREAM
chunk (an identity line) — from the primitives in ``cryptography``
(scrypt, HKDF-SHA-256, HMAC-SHA-256, ChaCha20-Poly1305), nothing invented.
Everything it writes is opened by pyrage in production and, in the tests, by
the reference Go ``age`` tool too, which is what proves it right.
Files are opened by pyrage; the one thing read here is whether a passphrase
unwraps a file's key (``unwraps``), asked only after pyrage refused a file,
to tell a wrong password from a damaged file.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os

from cryptography.exceptions import InvalidTag

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

LOG_N = 17  # N = 2^17, r = 8: 128 MiB, ~0.5 s here; what age itself picks on this class of machine
MAX_LOG_N = 18  # readers refuse a file asking for more (memory exhaustion by a crafted file)
CHUNK = 64 * 1024
_LABEL = b"age-encryption.org/v1/scrypt"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def encrypt(plaintext: bytes, passphrase: str, log_n: int = LOG_N) -> bytes:
    if len(plaintext) > CHUNK:
        raise ValueError("age_scrypt writes single-chunk files only")
    file_key = os.urandom(16)
    salt = os.urandom(16)
    wrap_key = Scrypt(salt=_LABEL + salt, length=32, n=1 << log_n, r=8, p=1).derive(passphrase.encode())
    body = ChaCha20Poly1305(wrap_key).encrypt(b"\x00" * 12, file_key, None)
    header = f"age-encryption.org/v1\n-> scrypt {_b64(salt)} {log_n}\n{_b64(body)}\n---".encode()
    mac = hmac.new(_hkdf(file_key, b"", b"header"), header, "sha256").digest()
    nonce = os.urandom(16)
    payload_key = _hkdf(file_key, nonce, b"payload")
    chunk_nonce = (0).to_bytes(11, "big") + b"\x01"  # counter 0, last chunk
    payload = ChaCha20Poly1305(payload_key).encrypt(chunk_nonce, plaintext, None)
    return header + b" " + _b64(mac).encode() + b"\n" + nonce + payload


def stanza_log_n(data: bytes) -> int | None:
    """The work factor an age scrypt file asks for (None if it is not one)."""
    lines = data[:256].split(b"\n")
    if len(lines) < 2 or lines[0] != b"age-encryption.org/v1" or not lines[1].startswith(b"-> scrypt "):
        return None
    parts = lines[1].split()
    try:
        return int(parts[3])
    except (IndexError, ValueError):
        return None


def _unb64(text: bytes) -> bytes:
    return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)


def unwraps(data: bytes, passphrase: str) -> bool | None:
    """Whether ``passphrase`` opens the scrypt stanza of this age file (its file key
    unwraps): True means the password is right, so a refusal came from damage
    elsewhere in the file; None when the stanza itself cannot be read."""
    lines = data[:512].split(b"\n")
    log_n = stanza_log_n(data)
    if log_n is None or not 1 <= log_n <= MAX_LOG_N or len(lines) < 3:
        return None
    try:
        salt = _unb64(lines[1].split()[2])
        body = _unb64(lines[2])
    except (IndexError, ValueError, binascii.Error):
        return None
    if len(salt) != 16 or len(body) != 32:
        return None
    wrap_key = Scrypt(salt=_LABEL + salt, length=32, n=1 << log_n, r=8, p=1).derive(passphrase.encode())
    try:
        ChaCha20Poly1305(wrap_key).decrypt(b"\x00" * 12, body, None)
    except InvalidTag:
        return False
    return True
