"""The peer link's exceptions, on top of tether.core.errors:

    TetherError
    ├── Unauthorized
    │   └── PeerAuthError      a peer request (or a signed answer) failed authentication;
    │                          ``reason`` says which check  (HTTP 401, 503 for "busy"; exit 3)
    ├── PeerError              talking to the peer appliance failed          (HTTP 502, exit 8)
    │   ├── PeerUnreachable    no connection or no answer in time; names the address
    │   ├── PeerRefused        the peer answered 3xx/4xx/5xx; carries its status and message
    │   └── PeerUntrusted      the answer is not from the peer we trust
    │       └── PinMismatch    its TLS certificate key is not the pinned one; names both pins
    ├── WitnessError           the etcd witness (FO-11) could not be used         (HTTP 503, exit 8)
    │   ├── WitnessUnavailable no endpoint answered, or none had a quorum; names them
    │   └── WitnessHeld        another appliance holds the primary key; names it (HTTP 409, exit 5)
    ├── IntegrityError
    │   └── StreamError        a change-stream message or full copy the backup cannot use;
    │                          nothing of it was applied                     (exit 7)
    └── StorageError           the backup could not store what it received (disk full,
                               read-only); nothing of it was applied         (HTTP 500, exit 1)

``PeerAuthError`` is what the answering side raises (its routes turn it into
the 401 body of docs/formats/peer-protocol.md); the ``PeerError`` family is
what the asking side's ``PeerClient`` raises; ``StreamError`` and
``StorageError`` are what the backup's sink says in its sync status.
"""

from __future__ import annotations

from tether.core.errors import IntegrityError, TetherError, Unauthorized

#: Every ``PeerAuthError.reason`` (docs/formats/peer-protocol.md, "Refusals").
REASONS = frozenset({"missing", "version", "no_key", "key", "signature", "stale", "replay", "reflected", "busy"})


class PeerAuthError(Unauthorized):
    code = "peer_auth"

    def __init__(self, reason: str, message: str, *, hint: str | None = None):
        if reason not in REASONS:
            raise ValueError(f"unknown peer auth reason {reason!r}")
        super().__init__(message, hint=hint)
        self.reason = reason
        if reason == "busy":
            self.status = 503  # the verifier is overloaded, the request may be fine

    def to_dict(self) -> dict:
        body = {"error": self.code, "reason": self.reason, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body


class PeerError(TetherError):
    status, exit_code, code = 502, 8, "peer"


class PeerUnreachable(PeerError):
    code = "peer_unreachable"

    def __init__(self, message: str, *, address: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.address = address


class PeerRefused(PeerError):
    code = "peer_refused"

    def __init__(self, message: str, *, status_code: int, error: str | None = None, reason: str | None = None,
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status_code = status_code  # the peer's HTTP status (``status`` is ours: 502)
        self.error = error
        self.reason = reason


class PeerUntrusted(PeerError):
    code = "peer_untrusted"


class PinMismatch(PeerUntrusted):
    code = "peer_pin_mismatch"

    def __init__(self, message: str, *, pinned: str, presented: str | None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.pinned = pinned
        self.presented = presented


class WitnessError(TetherError):
    status, exit_code, code = 503, 8, "witness"


class WitnessUnavailable(WitnessError):
    code = "witness_unavailable"


class WitnessHeld(WitnessError):
    status, exit_code, code = 409, 5, "witness_held"

    def __init__(self, message: str, *, holder: dict, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.holder = holder


class StreamError(IntegrityError):
    code = "sync_stream"


class StorageError(TetherError):
    status, exit_code, code = 500, 1, "sync_storage"
