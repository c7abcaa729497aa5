"""The per-appliance secret box (SEC-03).

Secrets at rest (private keys, sealed settings such as the SMTP password) are
sealed with AES-256-GCM under a 32-byte key kept in ``<data>/secret.key``
(mode 0600), created once per appliance. A sealed value is the text

    tsb1:<base64url(nonce[12] || ciphertext || tag[16])>

and the ``purpose`` string is bound in as associated data, so a value sealed
for one purpose cannot be replayed as another. Factory reset destroys the key
file, which makes every sealed value unreadable.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import IntegrityError

PREFIX = "tsb1:"


class SecretBox:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("secret box key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def create(cls, path: Path) -> "SecretBox":
        """Create the key file (refuses to overwrite) and return its box."""
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> "SecretBox":
        return cls(path.read_bytes())

    def seal(self, plaintext: bytes | str, purpose: str) -> str:
        if isinstance(plaintext, str):
            plaintext = plaintext.encode()
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext, purpose.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def unseal(self, sealed: str, purpose: str) -> bytes:
        if not sealed.startswith(PREFIX):
            raise IntegrityError("sealed value has an unknown format")
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
        except InvalidTag:
            raise IntegrityError("sealed value does not open with this appliance's key") from None
