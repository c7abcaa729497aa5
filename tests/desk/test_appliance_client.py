"""DESK-09: an appliance opens an incident itself through
``tether.desk.client.open_incident`` against a running desk, with a token
made by ``tether-desk token create``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tether.desk.client import DeskError, open_incident


@pytest.fixture(scope="module")
def desk(desk_factory):
    d = desk_factory()
    d.cid = d.customer("Appl Co", ["ops@appl.test"])["id"]
    d.old = d.customer("Gone Co", ["ops@gone.test"], starts="2024-01-01", ends="2025-01-01")["id"]
    return d


@pytest.fixture(scope="module")
def token(desk):
    return desk.token("appliance-1", desk.cid, "ops@appl.test")


@pytest.mark.req("DESK-09", "DESK-01")
def test_appliance_opens_an_incident_with_version_status_and_logs(desk, token):
    logs = {"failover.log": b"12:00 peer lost\n12:01 promoted to primary\n", "sync.log": bytes(range(256))}
    status = {"failover_role": "primary", "peer": "unreachable", "last_sync": "2027-01-05T15:58:00Z"}
    got = open_incident(desk.url, token, summary="Automatic failover to this appliance", version="1.1.0",
                        status=status, logs=logs, verify=False)
    assert got["number"] >= 1 and got["severity"] == 2
    inc = desk.incident(got["number"])
    assert inc["source"] == "appliance" and inc["product_version"] == "1.1.0"
    assert inc["appliance_status"] == status and inc["inquirer_email"] == "ops@appl.test"
    assert inc["inquirer_name"] == "appliance appliance-1"
    files = {a["filename"]: a for a in inc["attachments"]}
    assert set(files) == {"failover.log", "sync.log"}
    data = desk.api.get(f"/api/incidents/{got['number']}/attachments/{files['sync.log']['id']}").content
    assert data == logs["sync.log"]
    desk.incident_mail(got["number"], "Your incident has number")


@pytest.mark.req("DESK-09")
def test_bad_credentials_and_bad_input_are_refused(desk, token):
    with pytest.raises(DeskError) as e:
        open_incident(desk.url, "tda_wrong", summary="x", version="1.1.0", status={}, logs={})
    assert e.value.status == 401
    with pytest.raises(DeskError) as e:
        open_incident(desk.url, token, summary="x", version="one", status={}, logs={})
    assert e.value.status == 422 and e.value.field == "version"
    before = len(desk.api.get("/api/incidents").json())
    r = desk.public.post("/api/appliance/incidents", data={"summary": "x", "version": "1.1.0", "status": "[1]"},
                         headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422 and r.json()["field"] == "status"
    assert len(desk.api.get("/api/incidents").json()) == before


@pytest.mark.req("DESK-09", "DESK-07")
def test_appliance_of_a_customer_without_agreement_is_refused_and_revoked_tokens_fail(desk):
    gone = desk.token("gone-1", desk.old, "ops@gone.test")
    with pytest.raises(DeskError) as e:
        open_incident(desk.url, gone, summary="failover", version="1.1.0", status={}, logs={})
    assert e.value.status == 403 and "no maintenance agreement" in str(e.value)
    t2 = desk.token("appliance-2", desk.cid, "ops@appl.test")
    assert desk.api.delete("/api/tokens/appliance-2").status_code == 200
    with pytest.raises(DeskError) as e:
        open_incident(desk.url, t2, summary="x", version="1.1.0", status={}, logs={})
    assert e.value.status == 401


def test_token_contact_must_represent_the_customer(desk):
    out = subprocess.run([sys.executable, "-m", "tether.desk", "token", "create", "bad", "--customer",
                          str(desk.cid), "--contact", "ops@gone.test", "--data", str(desk.data)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "not a representative" in out.stderr


@pytest.mark.req("DESK-09")
def test_a_report_sent_again_with_its_key_gets_the_incident_already_opened(desk, token):
    """A retry whose first answer was lost: the same key gives the same incident, once."""
    key = "failover.automatic:0123abcd:7"
    before = len(desk.api.get("/api/incidents").json())
    first = open_incident(desk.url, token, summary="Automatic failover: this appliance became primary",
                          version="1.1.0", status={}, logs={"a.log": b"x"}, key=key)
    again = open_incident(desk.url, token, summary="Automatic failover: this appliance became primary",
                          version="1.1.0", status={}, logs={"a.log": b"x"}, key=key)
    assert first["duplicate"] is False and again["duplicate"] is True and again["number"] == first["number"]
    assert len(desk.api.get("/api/incidents").json()) == before + 1
    assert len(desk.incident(first["number"])["attachments"]) == 1
    # another key, another incident; another customer's token may use the same key for its own
    other = open_incident(desk.url, token, summary="x", version="1.1.0", status={}, logs={}, key=key + "1")
    assert other["number"] != first["number"] and not other["duplicate"]
    desk.cid2 = desk.customer("Second Co", ["it@second.test"])["id"]
    theirs = open_incident(desk.url, desk.token("second-co-1", desk.cid2, "it@second.test"), summary="x",
                           version="1.1.0", status={}, logs={}, key=key)
    assert theirs["number"] not in (first["number"], other["number"]) and not theirs["duplicate"]
    # a bad key is refused with nothing stored
    n = len(desk.api.get("/api/incidents").json())
    with pytest.raises(DeskError) as e:
        open_incident(desk.url, token, summary="x", version="1.1.0", status={}, logs={}, key="no spaces")
    assert e.value.status == 422 and e.value.field == "key"
    assert len(desk.api.get("/api/incidents").json()) == n
