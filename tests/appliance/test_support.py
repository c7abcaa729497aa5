"""DESK-09, the appliance's side (tether.appliance.support): with the desk's
URL and an appliance token set in /appliance, a running appliance opens
incidents on a running desk by itself (a failed site backup) and on request,
with its version, status and logs attached."""

from __future__ import annotations

import pytest

from tether import __version__
from tests.helpers import first_admin_login, first_site_login, wait_for


@pytest.fixture(scope="module")
def desk(desk_factory):
    d = desk_factory()
    d.cid = d.customer("Appliance Owner", ["it@owner.test"])["id"]
    return d


def _incidents(desk) -> list[dict]:
    return desk.api.get("/api/incidents").json()


@pytest.mark.req("DESK-09")
def test_appliance_opens_incidents_itself(desk, make_appliance):
    token = desk.token("appliance-a", desk.cid, "it@owner.test")
    a = make_appliance(site=True)
    with a.client() as c:
        ah = first_admin_login(c)
        sh = first_site_login(c)
        # not configured yet: a clear refusal
        r = c.post("/appliance/api/support/incident", headers=ah, json={"summary": "hello desk"})
        assert r.status_code == 409 and "no support desk" in r.json()["message"]
        r = c.put("/appliance/api/support", headers=ah, json={"desk": {"enabled": True, "url": "ftp://x"}})
        assert r.status_code == 422 and r.json()["field"] == "desk.url"
        r = c.put("/appliance/api/support", headers=ah,
                  json={"desk": {"enabled": True, "url": desk.url, "token": token, "verify_tls": True}})
        assert r.status_code == 200
        shown = c.get("/appliance/api/support", headers=ah).json()
        assert shown["desk"]["token"] == "********" and token not in str(shown)
        before = len(_incidents(desk))
        r = c.post("/appliance/api/support/incident", headers=ah,
                   json={"summary": "Appliance asks for help", "details": "testing the support link", "severity": 3})
        assert r.status_code == 201, r.text
        number = r.json()["number"]
        inc = desk.incident(number)
        assert inc["source"] == "appliance" and inc["product_version"] == __version__
        assert inc["appliance_status"]["serial_number"].startswith("TTH")
        assert {x["filename"] for x in inc["attachments"]} == {"appliance-audit.log", "site-audit.log"}
        # a failed site backup opens an incident by itself
        downloads = a.data / "backups" / ".downloads"
        downloads.parent.mkdir(parents=True, exist_ok=True)
        downloads.write_text("not a directory")  # the backup cannot be written
        r = c.post("/api/backup", headers=sh, json={"password": "Backup-password-1"})
        message = f"the backup could not be written: File exists ({downloads})"
        assert (r.status_code, r.json()) == (400, {"error": "error", "message": message,
                                                   "hint": "check the appliance's backups folder and free space"})
        [failed] = wait_for(lambda: [i for i in _incidents(desk) if i.get("summary") == "Site backup failed"], 20,
                            every=0.2, what=lambda: f"the incident about the failed backup; got {_incidents(desk)}")
        assert len(_incidents(desk)) == before + 2 and message in desk.incident(failed["number"])["description"]
        audit = c.get("/appliance/api/audit", headers=ah).json()
        assert [e for e in audit if e["action"] == "support.incident"]
        assert token not in str(audit)
