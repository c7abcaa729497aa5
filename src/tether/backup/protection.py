"""Whether a new site backup is password-protected (BK-01): the one rule the
/login Software page, the backup API and ``tether backup`` (online and
offline) apply before a backup is written.

A backup is protected by the password given. An unprotected backup is
written only when the caller asks for one explicitly (the page's "Do not
protect" box, the API's ``no_password``, the CLI's ``--no-password``); a
password given with that choice is ignored, as the page always did. An
empty or missing password without it is refused, the same way on every
face. How strong the password must be is the writer's check."""

from __future__ import annotations

from tether.core.errors import Invalid

REFUSAL = "give a backup password, or choose not to protect the backup"


def backup_password(password: str | None, *, no_password: bool, hint: str | None = None) -> str | None:
    """The password to protect a new backup with; None for an unprotected one (only with ``no_password``).
    ``hint`` tells the caller's face how to say either (Invalid, field ``password``)."""
    if no_password:
        return None
    if not password:
        raise Invalid(REFUSAL, field="password", hint=hint)
    return password
