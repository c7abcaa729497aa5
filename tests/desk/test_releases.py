"""Releases and update schedules (REL-01..04) through the desk's API, with the
built-in catalog (tether.core.releases) and with a --catalog file."""

from __future__ import annotations

import pytest

CATALOG = """
releases:
  - {version: 1.0.0, ga: 2025-12-01}
  - {version: 1.0.1, ga: 2026-02-02}
  - {version: 1.1.0, ga: 2026-09-01, upgrade_from: ["1.0"]}
  - {version: 1.1.1, ga: 2027-01-11, upgrade_from: ["1.0"]}
  - {version: 1.2.0, ga: 2027-03-01, upgrade_from: ["1.1"]}
  - {version: 1.2.1, ga: 2027-04-05, upgrade_from: ["1.1"], critical_security: true}
"""


@pytest.fixture(scope="module")
def desk(desk_factory):
    d = desk_factory()
    d.cid = d.customer("Rel Co", ["rex@rel.test"], starts="2025-01-01", ends="2029-12-31")["id"]
    return d


@pytest.fixture(scope="module")
def hosted_desk(desk_factory, tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    path.write_text(CATALOG)
    d = desk_factory("--catalog", str(path))
    d.cid = d.customer("Hosted Co", ["hal@hosted.test"], starts="2025-01-01", ends="2029-12-31")["id"]
    return d


@pytest.mark.req("REL-01", "REL-02")
def test_maintenance_versions_fall_under_their_major(desk):
    r = desk.public.get("/api/releases/check", params={"version": "1.0.1"}).json()
    assert r["major"] == "1.0" and r["end_of_support"] == "2027-12-01" and r["supported"] is True
    assert desk.public.get("/api/releases/check", params={"version": "1.0"}).json()["end_of_support"] == "2027-12-01"
    assert desk.public.get("/api/releases/check", params={"version": "1.1.7"}).json()["end_of_support"] == "2028-09-01"
    bad = desk.public.get("/api/releases/check", params={"version": "1.0.1.4"})
    assert bad.status_code == 422 and bad.json()["field"] == "version"
    assert desk.public.get("/api/releases/check", params={"version": "7.0"}).status_code == 422


@pytest.mark.req("REL-02")
def test_incident_on_retired_version_is_flagged(desk):
    desk.set_clock("2027-12-01T09:00:00-06:00")  # 1.0 retired today, 1.1 still supported
    try:
        releases = {r["version"]: r for r in desk.public.get("/api/releases").json()["releases"]}
        assert releases["1.0.1"]["supported"] is False and releases["1.1.0"]["supported"] is True
        inc = desk.open("rex@rel.test", product_version="1.0.1")
        assert inc["version_retired"] is True
        assert any(h["kind"] == "version_retired" and "supported until 2027-12-01" in h["text"]
                   for h in inc["history"])
        assert desk.open("rex@rel.test", product_version="1.1.0")["version_retired"] is False
        assert "retired version" in desk.api.get("/incidents").text
    finally:
        desk.set_clock("2027-01-05T10:00:00-06:00")


@pytest.mark.req("REL-02", "DESK-07")
def test_refuse_policy_refuses_incidents_on_retired_versions(desk_factory):
    d = desk_factory("--retired-policy", "refuse")
    d.customer("Strict Co", ["sue@strict.test"])
    d.set_clock("2028-01-10T09:00:00-06:00")
    r = d.public.post("/api/incidents", json={"summary": "old", "inquirer_email": "sue@strict.test",
                                              "product_version": "1.0.0"})
    assert r.status_code == 403 and r.json()["field"] == "product_version" and "retired" in r.json()["message"]
    assert any("retired" in x["reason"] for x in d.api.get("/api/refusals").json())
    assert d.api.get("/api/incidents").json() == []


@pytest.mark.req("REL-03")
def test_upgrade_sources_are_published(desk):
    rel = {r["version"]: r for r in desk.public.get("/api/releases").json()["releases"]}
    assert rel["1.1.0"]["upgrade_from"] == ["1.0"] and rel["1.0.1"]["kind"] == "maintenance"
    check = lambda v, t: desk.public.get("/api/releases/check", params={"version": v, "target": t}).json()  # noqa: E731
    assert check("1.0.1", "1.1.0")["upgrade_allowed"] is True
    assert check("1.0.0", "1.0.1")["upgrade_allowed"] is True
    assert check("1.1.0", "1.0.1")["upgrade_allowed"] is False
    assert check("1.0.1", " 1.1.0\n")["target"] == "1.1.0"  # the target as parsed, not as written
    assert "target" not in check("1.0.1", "")


def _register(d, name, version, level):
    r = d.api.post("/api/updates/appliances", json={"name": name, "customer_id": d.cid, "version": version,
                                                     "level": level, "contact_email": "hal@hosted.test"})
    assert r.status_code == 201, r.text
    return r.json()["next_update"]


@pytest.mark.req("REL-04", "REL-03")
def test_update_schedules_by_level_with_a_week_of_notice(hosted_desk):
    d = hosted_desk
    a = _register(d, "alpha", "1.1.0", 1)
    assert (a["target"], a["at"], a["notice_due"]) == ("1.1.1", "2027-01-25T06:00:00+00:00",
                                                       "2027-01-18T06:00:00+00:00")  # GA + 2 weeks
    c = _register(d, "gamma", "1.0.1", 2)
    assert (c["target"], c["at"]) == ("1.1.1", "2027-02-01T06:00:00+00:00")  # 1.1 GA + 5 months
    late = _register(d, "delta", "1.0.1", 1)  # 1.1.0 was due in September: a week's notice from now
    assert (late["target"], late["at"]) == ("1.1.0", "2027-01-12T16:00:00+00:00")
    assert d.api.post("/api/updates/appliances", json={"name": "x", "customer_id": d.cid, "version": "1.x",
                                                        "contact_email": "hal@hosted.test"}).json()["field"] == "version"

    d.run_jobs()
    d.relay.wait_for(lambda m: "delta to 1.1.0 on 2027-01-12T16:00:00+00:00" in m["Subject"])
    assert not d.relay.count(lambda m: "alpha" in m["Subject"])
    d.set_clock("2027-01-18T00:00:00-06:00")
    d.run_jobs()
    notice = d.relay.wait_for(lambda m: "alpha to 1.1.1" in m["Subject"])
    assert "2027-01-25T06:00:00+00:00" in notice["Subject"] and notice["To"] == "hal@hosted.test"
    d.run_jobs()
    assert d.relay.count(lambda m: "alpha to 1.1.1" in m["Subject"]) == 1  # each notice once
    sched = {s["name"]: s["next_update"] for s in d.api.get("/api/updates/schedule").json()}
    assert sched["alpha"]["notice_sent_at"] == "2027-01-18T06:00:00+00:00"


@pytest.mark.req("REL-04", "DESK-09")
def test_critical_security_update_applies_immediately_whatever_the_level(hosted_desk):
    d = hosted_desk
    _register(d, "omega", "1.1.0", 2)
    token = d.api.post("/api/tokens", json={"name": "omega-token", "customer_id": d.cid,
                                            "contact_email": "hal@hosted.test"}).json()["token"]
    d.set_clock("2027-04-05T09:00:00-05:00")
    mine = d.public.get("/api/updates/appliances/omega", headers={"Authorization": f"Bearer {token}"})
    nxt = mine.json()["next_update"]
    assert (nxt["target"], nxt["critical"], nxt["at"]) == ("1.2.1", True, "2027-04-05T14:00:00+00:00")
    d.run_jobs()
    d.relay.wait_for(lambda m: str(m["Subject"]).strip().startswith("Critical security update of omega to 1.2.1"))
    done = d.public.post("/api/updates/appliances/omega/installed", json={"version": "1.2.1"},
                         headers={"Authorization": f"Bearer {token}"})
    assert done.status_code == 200 and done.json()["next_update"] is None
    assert d.public.get("/api/updates/appliances/omega").status_code == 401
