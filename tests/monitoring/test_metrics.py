"""OPS-04: /metrics in the Prometheus text format. A real Prometheus server
scrapes the appliance over HTTPS (trusting its built-in certificate, with an
oauth2 client-credentials token of an API account holding the ``metrics``
permission), and the values read back through Prometheus's query API are the
appliance's own figures (GET /appliance/api/dashboard). `promtool check
metrics` accepts the exposition and `promtool check rules` the alert rules in
docs/; Prometheus loads those rules, and runs the example Grafana dashboard's
queries. Role and sync figures are checked on a
standalone appliance (role none, not paired), not on a failover pair."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import api_token, ok, wait_for
from tests.monitoring.prometheus import PROMTOOL, Prometheus, require

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "monitoring" / "tether-alerts.yml"
GRAFANA = ROOT / "docs" / "monitoring" / "grafana-dashboard.json"
pytestmark = pytest.mark.req("OPS-04")


@pytest.fixture(scope="module")
def prom(watched, tmp_path_factory):
    require()
    d = tmp_path_factory.mktemp("prometheus")
    target = httpx.URL(watched.a.url)
    tls = {"ca_file": watched.a.cert_path}
    job = {"job_name": "tether", "scheme": "https", "scrape_interval": "2s", "scrape_timeout": "2s", "tls_config": tls,
           "oauth2": {"client_id": watched.client_id, "client_secret": watched.client_secret,
                      "token_url": f"{watched.a.url}/api/oauth/token", "tls_config": tls},
           "static_configs": [{"targets": [f"{target.host}:{target.port}"]}]}
    p = Prometheus(d, [job], [str(RULES)])
    yield p
    p.stop()


def test_metrics_need_the_metrics_permission_or_an_allowed_network(watched):
    c = watched.c
    r = c.get("/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "metrics" in r.json()["message"]
    # a site user's session token is not an API account's
    r = c.get("/metrics", headers=watched.sh)
    assert r.status_code == 401
    # an API account without the permission
    other = ok(c.post("/api/api-accounts", headers=watched.sh, json={"name": "backups", "permissions": ["backup"]}),
               201)
    r = c.get("/metrics", headers={"Authorization": f"Bearer {api_token(c, other['client_id'], other['client_secret'])}"})
    assert r.status_code == 403 and "'metrics' permission" in r.json()["message"]
    tok = api_token(c, watched.client_id, watched.client_secret)
    r = c.get("/metrics", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    # an allowed network needs no token; the setting is validated
    mon = ok(c.get("/appliance/api/monitoring", headers=watched.ah))
    bad = {**mon, "metrics": {"allowed_networks": ["not-a-network"]}}
    assert c.put("/appliance/api/monitoring", headers=watched.ah, json=bad).status_code == 422
    ok(c.put("/appliance/api/monitoring", headers=watched.ah, json={**mon, "metrics": {"allowed_networks": ["127.0.0.0/8"]}}))
    try:
        r = c.get("/metrics")
        assert r.status_code == 200 and "tether_role" in r.text
    finally:
        ok(c.put("/appliance/api/monitoring", headers=watched.ah, json=mon))
    assert c.get("/metrics").status_code == 401


def test_promtool_accepts_the_exposition_and_the_rules(watched):
    require()
    tok = api_token(watched.c, watched.client_id, watched.client_secret)
    text = watched.c.get("/metrics", headers={"Authorization": f"Bearer {tok}"}).text
    cp = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    cp = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and "SUCCESS" in cp.stdout, cp.stdout + cp.stderr


def test_prometheus_scrapes_the_figures_the_appliance_shows(watched, prom):
    wait_for(lambda: prom.value('up{job="tether"}') == 1 and prom.value("tether_generation") is not None, timeout=60,
             what=lambda: f"a successful scrape: {prom.api('targets')['activeTargets']} "
                          f"{prom.query('scrape_samples_scraped')}")
    dash = ok(watched.c.get("/appliance/api/dashboard", headers=watched.ah))
    f = dash["failover"]
    assert prom.value(f'tether_role{{role="{f["role"]}"}}') == 1
    assert prom.value('sum(tether_role)') == 1
    assert prom.value("tether_generation") == f["generation"]
    assert prom.value("tether_failover_paired") == 0 and not f["paired"]
    assert prom.value("tether_sync_lag_seconds") is None  # no pair, nothing to lag behind
    # clients by kind: the real jump client
    for kind in ("representatives", "jump_clients", "jumpoints"):
        assert prom.value(f'tether_connected_clients{{kind="{kind}"}}') == dash["connected_clients"][kind]
    assert dash["connected_clients"]["jump_clients"] == 1
    assert prom.value("tether_connections_refused_busy_total") == 0
    # the last backup: the same instant; its age grows with the scrape time
    assert prom.value("tether_last_backup_timestamp_seconds") == dash["last_backup"]["at"]
    age = prom.value("tether_last_backup_age_seconds")
    assert dash["last_backup"]["age_seconds"] - 30 <= age <= dash["last_backup"]["age_seconds"] + 30
    # each presented certificate's seconds to expiry
    for cert in dash["certificates"]:
        got = prom.value(f'tether_certificate_expiry_seconds{{id="{cert["id"]}"}}')
        assert abs(got - cert["seconds_to_expiry"]) < 30, cert
    # readiness: failing checks and each check's state
    assert prom.value("tether_readiness_checks_failing") == dash["readiness"]["counts"]["fail"] > 0
    for name in dash["readiness"]["failing"]:
        assert prom.value(f'tether_readiness_check{{check="{name}"}}') == 2
    assert prom.value('tether_readiness_check{check="default_passwords"}') == 0
    # the job runner
    assert prom.value('tether_job_runs_total{background_job="dashboard-sampler"}') >= 1
    assert prom.value('tether_job_last_run_failed{background_job="client-hub-sweep"}') == 0
    # Prometheus loaded the documented alert rules
    groups = prom.api("rules")["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {"TetherNotReady", "TetherBackupTooOld", "TetherCertificateExpiring", "TetherSyncLagHigh"} <= names
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
    # the example Grafana dashboard's queries run on this Prometheus, and those about a standalone
    # appliance's figures answer
    dashboard = json.loads(GRAFANA.read_text())
    answered = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if prom.query(target["expr"].replace("$instance", ".*")):
                answered.add(panel["title"])
    assert {"Role", "Readiness checks failing", "Last site backup age", "Connected clients",
            "Certificates: time to expiry", "Readiness checks"} <= answered, answered
