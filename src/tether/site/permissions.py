"""The permission names every /login page and /api endpoint checks (SITE-06).

Site users who are administrators hold every permission; other users and API
accounts hold exactly the ones granted. The site's actions (``site.actions``,
``clients.admin``) take the acting ``Actor`` and check it with ``require``
before anything else, so the HTML pages and the JSON API cannot differ.
"""

from __future__ import annotations

from typing import Protocol

from tether.core.errors import Forbidden, Invalid

BACKUP = "backup"
COMMAND = "command"
REPORTING = "reporting"
CONFIG_READ = "config:read"
CONFIG_WRITE = "config:write"
USERS_MANAGE = "users:manage"
METRICS = "metrics"

ALL = (BACKUP, COMMAND, REPORTING, CONFIG_READ, CONFIG_WRITE, USERS_MANAGE, METRICS)
DESCRIPTIONS = {
    BACKUP: "download site backups",
    COMMAND: "run commands (health check, failover role)",
    REPORTING: "read reports, logged history and the audit log",
    CONFIG_READ: "read site configuration",
    CONFIG_WRITE: "change site configuration",
    USERS_MANAGE: "manage users and API accounts",
    METRICS: "scrape the appliance's Prometheus metrics (/metrics)",
}


class Actor(Protocol):
    """Who acts on the site: a site user or an API account and what it was granted
    (``tether.web.auth.Principal`` is one). Audit records name it."""

    @property
    def name(self) -> str: ...

    @property
    def granted(self) -> frozenset[str]: ...


def normalize(perms: list[str] | tuple[str, ...], field: str = "permissions") -> list[str]:
    unknown = sorted(set(perms) - set(ALL))
    if unknown:
        raise Invalid(f"unknown permission(s): {', '.join(unknown)}; known: {', '.join(ALL)}", field=field)
    return sorted(set(perms))


def require(granted: frozenset[str] | set[str], needed: str) -> None:
    if needed not in granted:
        raise Forbidden(f"this account lacks the '{needed}' permission ({DESCRIPTIONS[needed]})")
