"""Logged history as callers read and record it (SITE-03, SEC-06): the
site's audit log, history listings, one session with its events and
recordings. Reading needs ``reporting``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import permissions as P
from ..permissions import Actor

if TYPE_CHECKING:
    from ..site import Site


def audit_log(site: Site, actor: Actor, limit: int = 100, offset: int = 0) -> list[dict]:
    """The site's audit log, newest first."""
    P.require(actor.granted, P.REPORTING)
    return site.audit.list(min(max(limit, 1), 1000), max(offset, 0))
