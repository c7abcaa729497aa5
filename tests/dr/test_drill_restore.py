"""The drill's restore rehearsal (DR-02) on a real site: ``tether drill``
restores a backup into a scratch appliance started on its own loopback port,
isolated, compares its users and settings with the live site, times it and
removes it; a user and a setting changed after the backup are reported; a
missing or damaged backup fails the drill with a clear entry and a non-zero
exit, the live site untouched."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, ok, run_cli


def _admin_env(a) -> dict:
    return {**a.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}


def drill(a, *args) -> tuple[int, dict | list]:
    cp = run_cli("drill", *args, "--json", env=_admin_env(a), timeout=300)
    assert cp.stdout, cp.stderr
    return cp.returncode, json.loads(cp.stdout)


def users(c, sh) -> set[str]:
    return {u["username"] for u in ok(c.get("/api/users", headers=sh))}


@pytest.mark.req("DR-02")
def test_restore_rehearsal_compares_a_real_scratch_copy_reports_changes_and_fails_clearly(ready_site, tmp_path):
    a, c, ah, sh = ready_site
    ok(c.post("/api/users", headers=sh, json={"username": "alice", "password": "Alice-pass-1234"}), 201)
    ok(c.put("/api/config/site", headers=sh, json={"display_name": "Before the backup"}))
    pw = tmp_path / "pw"
    pw.write_text("Backup-pass-12345")
    nsb = tmp_path / "site.nsb"
    run_cli("backup", "--out", str(nsb), "--password-file", str(pw), check=True,
            env={**a.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD})
    # made after the backup: the rehearsal must say so
    ok(c.post("/api/users", headers=sh, json={"username": "late", "password": "Late-pass-12345"}), 201)
    ok(c.put("/api/config/site", headers=sh, json={"display_name": "After the backup"}))

    rc, r = drill(a, "--backup", str(nsb), "--password-file", str(pw))
    assert rc == 0, r  # differences are a warning, not a failure
    assert r["state"] == "done" and r["result"] == "warn" and r["failover"]["result"] == "skipped"
    rs = r["restore"]
    assert rs["result"] == "warn" and rs["backup"]["source"] == "upload" and rs["backup"]["file"] == "site.nsb"
    cmp = rs["comparison"]
    assert cmp["users"]["only_live"] == ["late"] and cmp["users"]["only_restored"] == []
    assert cmp["users"]["live"] == cmp["users"]["restored"] + 1 >= 3  # admin, alice (and late, live only)
    assert cmp["settings"]["changed"] == ["site"] and cmp["settings"]["restored"] == cmp["settings"]["live"] > 0
    assert any("late" in d for d in rs["differences"])
    t = rs["timings"]
    assert 0 < t["restore_seconds"] < 120 and 0 < t["start_seconds"] < 120
    assert t["restore_to_answer_seconds"] == pytest.approx(t["restore_seconds"] + t["start_seconds"], abs=0.01)
    sc = rs["scratch"]
    assert sc["health"] == 200 and sc["isolated"] is True and sc["removed"] is True
    host, port = sc["address"].rsplit(":", 1)
    assert host == "127.0.0.1" and sc["address"] not in a.info["listen"]
    assert not list((a.data / "drills").glob(".scratch-*"))  # the scratch appliance is gone
    assert json.loads((a.data / "drills" / f"drill-{r['id']}.json").read_text())["result"] == "warn"
    assert not list((a.data / "backups" / ".uploads").glob("*"))  # the uploaded copy too
    assert len(rs["differences"]) == 2  # the user and the site settings
    first = r

    # without a usable backup the drill fails clearly and changes nothing (same appliance: one start-up)
    before = users(c, sh)
    rc, r = drill(a, "--backup", "latest", "--no-failover")
    assert rc == 9 and r["result"] == "fail"
    assert "no site backup is kept" in r["restore"]["error"] and r["errors"]

    bad = tmp_path / "damaged.nsb"
    run_cli("backup", "--out", str(bad), "--no-password", check=True,
            env={**a.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD})
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    rc, r = drill(a, "--backup", str(bad))
    assert rc == 9 and r["restore"]["result"] == "fail"
    assert "the scratch restore failed" in r["restore"]["error"]
    assert r["restore"]["scratch"]["removed"] is True and not list((a.data / "drills").glob(".scratch-*"))
    assert users(c, sh) == before and c.get("/health").status_code == 200

    # bad input: a clear 422, no drill started
    resp = c.post("/appliance/api/drills", headers=ah, json={"backup": "yesterday"})
    assert resp.status_code == 422
    assert c.get("/appliance/api/drills", headers=sh).status_code in (401, 403)  # a site session is not /appliance's
    assert c.get("/appliance/api/drills/not-an-id", headers=ah).status_code == 422
    assert c.get("/appliance/api/drills/20200101T000000Z-abcdef", headers=ah).status_code == 404
    # the API and the CLI list the same drills with their figures, newest first
    rc, listed = drill(a, "list")
    assert rc == 0 and [x["result"] for x in listed] == ["fail", "fail", "warn"]
    assert listed[2]["differences"] == len(first["restore"]["differences"]) == 2
    assert listed[2]["restore_seconds"] == first["restore"]["timings"]["restore_seconds"]
    assert ok(c.get("/appliance/api/drills", headers=ah)) == listed
    audit = [e["action"] for e in ok(c.get("/appliance/api/audit", headers=ah))]
    assert audit.count("drill.start") == audit.count("drill.done") == 3
    rc, shown = drill(a, "show", r["id"])
    assert rc == 0 and shown["id"] == r["id"] and os.path.exists(a.data / "drills" / f"drill-{r['id']}.json")
