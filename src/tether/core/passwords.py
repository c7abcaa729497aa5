"""Password hashing (SEC-01): argon2id through argon2-cffi, and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import Invalid

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults

MIN_LENGTH = 8
DEFAULT_PASSWORD = "password"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_new_password(new: str, *, current: str | None = None, field: str = "new_password") -> None:
    """Refuse passwords an administrator should never be allowed to set."""
    if len(new) < MIN_LENGTH:
        raise Invalid(f"the new password must have at least {MIN_LENGTH} characters", field=field)
    if new == DEFAULT_PASSWORD:
        raise Invalid("the new password cannot be the default password", field=field)
    if current is not None and new == current:
        raise Invalid("the new password must differ from the current one", field=field)
