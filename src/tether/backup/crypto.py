"""age encryption for protected backups, streamed (SEC-02).

pyrage encrypts streams only to X25519 recipients, and passphrases only for
small in-memory data. So each protected backup gets a fresh X25519 identity:
the payload is streamed to its recipient, and the identity (one line) is
encrypted with the password through age's scrypt recipient. Both halves are
plain age files, readable by the `age` tool. Nothing here implements
cryptography; it only moves bytes through pyrage on a background thread.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import BinaryIO

import pyrage

from tether.core.errors import IntegrityError, Invalid

from . import age_scrypt

MIN_PASSWORD = 8


def check_password(password: str | None) -> None:
    if password is not None and len(password) < MIN_PASSWORD:
        raise Invalid(f"a backup password needs at least {MIN_PASSWORD} characters", field="password")


def new_identity():
    return pyrage.x25519.Identity.generate()


def seal_identity(identity, password: str) -> bytes:
    """The identity as an age file for the password, at a fixed scrypt cost (see age_scrypt)."""
    return age_scrypt.encrypt((str(identity) + "\n").encode(), password)


class Sealing:
    """A new identity for one archive, sealed with the password on a thread (scrypt: ~0.35 s of one core)
    while the caller goes on with the archive's other work; ``sealed()`` waits for it."""

    def __init__(self, password: str):
        self.identity = new_identity()
        self._sealed: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(password,), name="nsb-seal", daemon=True)
        self._thread.start()

    def _work(self, password: str) -> None:
        try:
            self._sealed = seal_identity(self.identity, password)
        except BaseException as exc:  # raised by sealed(), in the writer's thread
            self._error = exc

    def sealed(self) -> bytes:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._sealed


def open_identity(sealed: bytes, password: str):
    log_n = age_scrypt.stanza_log_n(sealed)
    if log_n is None:
        raise IntegrityError("the backup's identity.age is not an age passphrase file")
    if log_n > age_scrypt.MAX_LOG_N:
        raise IntegrityError(f"the backup's identity.age asks for an scrypt cost of 2^{log_n}; "
                             f"at most 2^{age_scrypt.MAX_LOG_N} is accepted")
    try:
        text = pyrage.passphrase.decrypt(sealed, password).decode().strip()
    except Exception:
        if age_scrypt.unwraps(sealed, password) is False:
            raise IntegrityError("wrong password for this backup",
                                 hint="check the password (the backup's, not a login password: --password-file FILE or "
                                      "TETHER_BACKUP_PASSWORD; on the page, the password field); a lost backup "
                                      "password cannot be recovered: then use another backup") from None
        raise IntegrityError("this backup is damaged or was altered: its identity.age is damaged "
                             "(the password is right)", hint="use another copy of the backup") from None
    try:
        return pyrage.x25519.Identity.from_str(text)
    except Exception:
        raise IntegrityError("the backup's identity.age does not hold an age identity") from None


class _Pipe:
    """os.pipe wrapped as file objects, with the worker's exception kept."""

    def __init__(self):
        r, w = os.pipe()
        self.r = os.fdopen(r, "rb", buffering=1 << 20)
        self.w = os.fdopen(w, "wb", buffering=1 << 20)
        self.error: BaseException | None = None


@contextmanager
def encrypting(out: BinaryIO, recipient):
    """Yield a writable file; what is written is age-encrypted into ``out``."""
    p = _Pipe()

    def work():
        try:
            pyrage.encrypt_io(p.r, out, [recipient])
        except BaseException as exc:  # reported to the writer below
            p.error = exc
        finally:
            p.r.close()

    t = threading.Thread(target=work, name="nsb-encrypt", daemon=True)
    t.start()
    try:
        yield p.w
    finally:
        try:
            p.w.close()
        except BrokenPipeError:
            pass
        t.join()
    if p.error:
        raise IntegrityError(f"encryption failed: {p.error}")


class Decrypting:
    """A readable file of the decrypted stream (``.r``). Call ``finish()`` at the
    end (or after an error): it raises IntegrityError if age refused the data,
    which is then the real cause of any short or garbled read."""

    def __init__(self, src: BinaryIO, identity):
        self._p = _Pipe()
        self.r = self._p.r
        self._t = threading.Thread(target=self._work, args=(src, identity), name="nsb-decrypt", daemon=True)
        self._t.start()

    def _work(self, src, identity):
        try:
            pyrage.decrypt_io(src, self._p.w, [identity])
        except BaseException as exc:
            self._p.error = exc
        finally:
            try:
                self._p.w.close()
            except BrokenPipeError:
                pass

    def finish(self, early: bool = False) -> None:
        """``early``: the reader stopped before the end (its own error)."""
        try:
            self._p.r.close()  # unblocks the worker if the reader stopped early
        finally:
            self._t.join()
        err = self._p.error
        if err is not None and (isinstance(err, pyrage.DecryptError) or not early):
            raise IntegrityError("the backup payload failed authentication (tampered, corrupted or truncated)")
