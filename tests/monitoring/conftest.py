"""One watched appliance for the metrics (OPS-04) and dashboard (OPS-07) tests:
a site with both first logins done, a real `tether-jump` connected, a site
backup taken, and an API account holding the ``metrics`` permission (its
client id and secret for Prometheus's oauth2 client credentials). Shared by
the package's modules; the figures compared are read live on both sides."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.clients.conftest import Clients, Hosts, online
from tests.helpers import ApplianceProc, first_admin_login, first_site_login, ok, run_cli, wait_for


@dataclass
class Watched:
    a: ApplianceProc
    c: httpx.Client
    ah: dict
    sh: dict
    client_id: str
    client_secret: str


@pytest.fixture(scope="package")
def watched(tmp_path_factory, vendor):
    d = tmp_path_factory.mktemp("watched")
    data = d / "appliance"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    a = ApplianceProc(data, ["127.0.0.1:0"]).start()
    c = a.client()
    ah, sh = first_admin_login(c), first_site_login(c)
    hosts = Hosts(d / "hosts")
    hosts.point("127.0.0.1")
    (d / "clients").mkdir()
    cl = Clients(d / "clients", hosts)
    try:
        dep = cl.deploy(c, sh, "jump")
        cl.install("jump", httpx.URL(a.url).port, dep["token"], "web-01")
        cl.run("jump", "web-01")
        wait_for(lambda: online(c, sh, "jump", "web-01"), what="the jump client online")
        r = c.post("/api/backup", headers=sh, json={"no_password": True})
        assert r.status_code == 200, r.text
        acct = ok(c.post("/api/api-accounts", headers=sh, json={"name": "prometheus", "permissions": ["metrics"]}),
                  201)
        yield Watched(a, c, ah, sh, acct["client_id"], acct["client_secret"])
    finally:
        for p in cl.procs:
            p.stop()
        c.close()
        a.stop()
