"""The appliance opens support incidents on the vendor's desk by itself
(DESK-09): on request from /appliance, and automatically when a site backup
fails (and later on an automatic failover). Each incident carries the
appliance's version, its status and its recent audit logs, sent through the
desk opener that the runtime wires (``tether.desk.client``), with the token
kept sealed in the /appliance ``support`` settings.

This module declares what it needs (``SupportHost``, ``DeskOpener``,
``Spawn``) and imports neither the runtime nor the desk."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Protocol

from tether.appliance.settings import ApplianceSettings
from tether.core.audit import AuditLog
from tether.core.errors import Conflict, TetherError

log = logging.getLogger("tether.support")


class DeskRefused(Exception):
    """The desk answered with an error (its message)."""


class SupportHost(Protocol):
    settings: ApplianceSettings
    audit: AuditLog

    @property
    def site(self) -> Any: ...
    def status_basics(self) -> dict: ...
    def site_information(self) -> dict: ...


# (desk_url, token, *, summary, version, status, logs, severity, details, verify) -> the desk's answer;
# raises DeskRefused when the desk refuses, anything else when it cannot be reached
DeskOpener = Callable[..., dict]
Spawn = Callable[[str, Callable[[], Any]], Any]  # run a one-shot background job (the job runner's submit)


class Support:
    def __init__(self, host: SupportHost, opener: DeskOpener, spawn: Spawn):
        self.host = host
        self.opener = opener
        self.spawn = spawn

    def _logs(self) -> dict[str, bytes]:
        def lines(events):
            return "\n".join(json.dumps({**e, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["at"]))},
                                        sort_keys=True, default=str) for e in events).encode()

        logs = {"appliance-audit.log": lines(self.host.audit.list(200))}
        site = self.host.site
        if site is not None:
            logs["site-audit.log"] = lines(site.audit.list(200))
        return logs

    def _status(self) -> dict:
        status = dict(self.host.status_basics())
        try:
            status["site"] = self.host.site_information()
        except TetherError:
            status["site"] = None
        return status

    def open_incident(self, summary: str, details: str | None = None, severity: int = 2,
                      actor: str = "appliance", source_ip: str | None = None) -> dict:
        from tether import __version__

        desk = self.host.settings.get("support").desk
        if not desk.enabled or not desk.url:
            raise Conflict("no support desk is configured", hint="set it under /appliance Support (url and token)")
        token = self.host.settings.reveal("support", "desk", "token") or ""
        try:
            answer = self.opener(desk.url, token, summary=summary, version=__version__, status=self._status(),
                                 logs=self._logs(), severity=severity, details=details, verify=desk.verify_tls)
        except DeskRefused as exc:
            raise TetherError(f"the support desk refused the incident: {exc}",
                              hint="check the desk URL and the appliance token") from None
        except Exception as exc:  # network, TLS
            raise TetherError(f"the support desk could not be reached: {exc.__class__.__name__}: {exc}") from None
        self.host.audit.record(actor, "support.incident", str(answer.get("number")), source_ip, {"summary": summary})
        return answer

    def report_failure(self, summary: str, details: str) -> None:
        """A failed site backup (when the desk settings ask for it). Best effort, in the background:
        never raises, never delays the failing action."""
        self._report(summary, details, backup_failure=True)

    def report_event(self, summary: str, details: str) -> None:
        """An event the vendor must hear of (an automatic failover, DESK-09), whenever a desk is configured."""
        self._report(summary, details, backup_failure=False)

    def _report(self, summary: str, details: str, *, backup_failure: bool) -> None:
        try:
            desk = self.host.settings.get("support").desk
        except Exception:
            return
        if not desk.enabled or not desk.url or (backup_failure and not desk.on_backup_failure):
            return

        def send():
            try:
                self.open_incident(summary, details, severity=2)
            except Exception as exc:
                log.warning("could not open a support incident (%s): %s", summary, exc)

        self.spawn("support-incident", send)
