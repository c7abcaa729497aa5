"""DESK-09, the appliance's side (tether.appliance.support): with the desk's
URL and an appliance token set in /appliance, a running appliance opens
incidents on a running desk by itself (a failed site backup) and on request,
with its version, status and logs attached."""

from __future__ import annotations

import pytest

from tether import __version__
from tests.helpers import admin_token, first_admin_login, first_site_login, wait_for


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


@pytest.mark.req("DESK-09")
def test_an_incident_waits_for_a_desk_that_is_down_across_a_restart(desk_factory, make_appliance):
    d = desk_factory()
    cid = d.customer("Outbox Owner", ["it@outbox.test"])["id"]
    token = d.token("appliance-outbox", cid, "it@outbox.test")
    a = make_appliance(site=True)
    c = a.client()
    try:
        ah, sh = first_admin_login(c), first_site_login(c)
        r = c.put("/appliance/api/support", headers=ah, json={"desk": {"enabled": True, "url": d.url, "token": token}})
        assert r.status_code == 200, r.text
        d.down()
        downloads = a.data / "backups" / ".downloads"
        downloads.parent.mkdir(parents=True, exist_ok=True)
        downloads.write_text("not a directory")  # the backup cannot be written
        assert c.post("/api/backup", headers=sh, json={"password": "Backup-password-1"}).status_code == 400
        [w] = wait_for(lambda: [x for x in c.get("/appliance/api/support/pending", headers=ah).json()
                                if x["attempts"] >= 1], 20, what="a failed first attempt in the outbox")
        assert w["summary"] == "Site backup failed" and "could not be reached" in w["last_error"]
        assert token not in str(w)
        # the appliance restarts while the desk is still down: the incident is still waiting
        c.close()
        a.stop()
        a.listen = list(a.info["listen"])
        a.start()
        c = a.client()
        ah = {"Authorization": f"Bearer {admin_token(c)}"}
        assert [x["key"] for x in c.get("/appliance/api/support/pending", headers=ah).json()] == [w["key"]]
        d.up()
        mine = lambda: [i for i in d.api.get("/api/incidents").json() if i["customer_id"] == cid]  # noqa: E731
        [inc] = wait_for(mine, 45, every=0.25, what=lambda: "the incident once the desk is back; pending: "
                         + c.get("/appliance/api/support/pending", headers=ah).text)
        assert inc["summary"] == "Site backup failed"
        wait_for(lambda: c.get("/appliance/api/support/pending", headers=ah).json() == [], 10, what="an empty outbox")
        assert [i["number"] for i in mine()] == [inc["number"]]
        [sent] = wait_for(lambda: [e for e in c.get("/appliance/api/audit", headers=ah).json()
                                   if e["action"] == "support.incident"], 10, what="the delivery audited")
        assert sent["target"] == str(inc["number"]) and sent["details"]["key"] == w["key"]
    finally:
        c.close()
