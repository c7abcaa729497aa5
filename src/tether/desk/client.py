"""The appliance's side of DESK-09: open a support incident on the vendor's
desk with the appliance's version, status and logs.

    from tether.desk.client import open_incident
    open_incident("https://desk.example.com", token, summary="automatic failover",
                  version="1.1.0", status={"role": "primary"}, logs={"failover.log": data})

The token is an appliance token (``tda_...``) created on the desk with
``tether-desk token create``; the appliance keeps it in its /appliance
settings. Errors come back as ``DeskError`` carrying the desk's JSON error.
"""

from __future__ import annotations

import json
import ssl

import httpx


class DeskError(Exception):
    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        self.error = body.get("error", "error")
        self.field = body.get("field")
        super().__init__(f"desk answered {status}: {body.get('message', body)}")


def open_incident(desk_url: str, token: str, *, summary: str, version: str, status: dict,
                  logs: dict[str, bytes], severity: int = 2, details: str | None = None,
                  verify: bool | str = True, timeout: float = 30.0, key: str | None = None) -> dict:
    """Open an incident; returns the desk's answer (``number``, ``severity``,
    ``sla``, ``duplicate``...). ``verify`` is httpx's: True, False or a CA bundle
    path. ``key`` names the event reported: sent again with the same key (a
    retry whose first answer was lost), the desk answers with the incident it
    already opened (``duplicate`` true) instead of opening another."""
    data = {"summary": summary, "version": version, "status": json.dumps(status), "severity": str(severity)}
    if details:
        data["details"] = details
    if key:
        data["key"] = key
    files = [("logs", (name, content, "application/octet-stream")) for name, content in logs.items()]
    if isinstance(verify, str):
        verify = ssl.create_default_context(cafile=verify)
    with httpx.Client(base_url=desk_url.rstrip("/"), verify=verify, timeout=timeout) as client:
        resp = client.post("/api/appliance/incidents", data=data, files=files or None,
                           headers={"Authorization": f"Bearer {token}"})
    try:
        body = resp.json()
    except ValueError:
        body = {"error": "bad_response", "message": resp.text[:200]}
    if resp.status_code == 201 or (resp.status_code == 200 and isinstance(body, dict) and body.get("duplicate")):
        return body
    raise DeskError(resp.status_code, body if isinstance(body, dict) else {"error": "bad_response"})
