"""The exception tree every layer shares.

    TetherError            base: a message for the user and an optional hint
    ├── NotFound           the thing named does not exist            (HTTP 404, exit 4)
    │   └── Gone           it is listed, but its content is not here (HTTP 410, exit 4)
    ├── Invalid            bad input; ``field`` names what was wrong (HTTP 422, exit 2)
    │   ├── TooLarge       a body or file over its size limit         (HTTP 413, exit 2)
    │   └── Malformed      a body that cannot be parsed at all        (HTTP 400, exit 2)
    ├── Conflict           the request clashes with current state    (HTTP 409, exit 5)
    │   └── NotPrimary     a site write on an appliance that is not the primary
    ├── Unauthorized       no or bad credentials                     (HTTP 401, exit 3)
    ├── Forbidden          authenticated but not allowed             (HTTP 403, exit 3)
    ├── PasswordChangeRequired  first login: change the password     (HTTP 403, exit 3)
    ├── Throttled          too many failed attempts; retry later     (HTTP 429, exit 6)
    ├── IntegrityError     a file or package failed verification     (HTTP 400, exit 7)
    └── Unavailable        a service it depends on (the object store) cannot be used now (HTTP 503, exit 8)

The web layer maps these to status codes and the CLI to exit codes (documented
in docs/cli.md); domain code raises them and never formats HTTP responses.
"""

from __future__ import annotations


class TetherError(Exception):
    status = 400
    exit_code = 1
    code = "error"

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field

    def to_dict(self) -> dict:
        body: dict = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.hint:
            body["hint"] = self.hint
        return body


class NotFound(TetherError):
    status, exit_code, code = 404, 4, "not_found"


class Gone(NotFound):
    status, code = 410, "gone"


class Invalid(TetherError):
    status, exit_code, code = 422, 2, "invalid"


class TooLarge(Invalid):
    status, code = 413, "too_large"


class Malformed(Invalid):
    """Not JSON, not the shape asked for, or nested too deeply: where a document says 400."""

    status, code = 400, "malformed"


class Conflict(TetherError):
    status, exit_code, code = 409, 5, "conflict"


class NotPrimary(Conflict):
    """A site write reached an appliance that does not serve as primary (the write fence)."""

    code = "not_primary"


class Unauthorized(TetherError):
    status, exit_code, code = 401, 3, "unauthorized"


class Forbidden(TetherError):
    status, exit_code, code = 403, 3, "forbidden"


class PasswordChangeRequired(Forbidden):
    code = "password_change_required"


class Throttled(TetherError):
    status, exit_code, code = 429, 6, "throttled"

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class IntegrityError(TetherError):
    status, exit_code, code = 400, 7, "integrity"


class Unavailable(TetherError):
    """A service the action depends on (the S3-compatible object store) is down or refuses: nothing changed."""

    status, exit_code, code = 503, 8, "unavailable"
