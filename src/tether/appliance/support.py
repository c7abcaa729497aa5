"""The appliance opens support incidents on the vendor's desk by itself
(DESK-09): on request from /appliance, and automatically when a site backup
fails. Each incident carries the appliance's version, its status and its
recent audit logs, sent through ``tether.desk.client`` with the token kept
sealed in the /appliance ``support`` settings."""

from __future__ import annotations

import json
import logging
import threading
import time

from tether.core.errors import Conflict, TetherError

log = logging.getLogger("tether.support")


def _logs(appliance) -> dict[str, bytes]:
    def lines(events):
        return "\n".join(json.dumps({**e, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["at"]))},
                                    sort_keys=True, default=str) for e in events).encode()

    logs = {"appliance-audit.log": lines(appliance.audit.list(200))}
    if appliance.site is not None:
        logs["site-audit.log"] = lines(appliance.site.audit.list(200))
    return logs


def _status(appliance) -> dict:
    status = dict(appliance.status_basics())
    try:
        status["site"] = appliance.site_information()
    except TetherError:
        status["site"] = None
    return status


def open_incident(appliance, summary: str, details: str | None = None, severity: int = 2,
                  actor: str = "appliance", source_ip: str | None = None) -> dict:
    from tether import __version__
    from tether.desk.client import DeskError, open_incident as desk_open

    desk = appliance.settings.get("support").desk
    if not desk.enabled or not desk.url:
        raise Conflict("no support desk is configured", hint="set it under /appliance Support (url and token)")
    token = appliance.settings.reveal("support", "desk", "token") or ""
    try:
        answer = desk_open(desk.url, token, summary=summary, version=__version__, status=_status(appliance),
                           logs=_logs(appliance), severity=severity, details=details, verify=desk.verify_tls)
    except DeskError as exc:
        raise TetherError(f"the support desk refused the incident: {exc.body.get('message', exc.error)}",
                          hint="check the desk URL and the appliance token") from None
    except Exception as exc:  # network, TLS
        raise TetherError(f"the support desk could not be reached: {exc.__class__.__name__}: {exc}") from None
    appliance.audit.record(actor, "support.incident", str(answer.get("number")), source_ip, {"summary": summary})
    return answer


def report_failure(appliance, summary: str, details: str) -> None:
    """Best effort, in the background: never raises, never delays the failing action."""
    try:
        desk = appliance.settings.get("support").desk
    except Exception:
        return
    if not (desk.enabled and desk.on_backup_failure):
        return

    def send():
        try:
            open_incident(appliance, summary, details, severity=2)
        except Exception as exc:
            log.warning("could not open a support incident (%s): %s", summary, exc)

    threading.Thread(target=send, name="support-incident", daemon=True).start()
