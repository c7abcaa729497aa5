"""Helpers for the failover tests: two appliances with the same site on
loopback addresses, the pre-shared key, the ``tether failover`` CLI, status;
the ``pair`` fixture is registered in conftest.py."""

from __future__ import annotations

import pytest

from tests.helpers import NEW_SITE_PASSWORD, first_admin_login, first_site_login, ok, run_cli

PSK = "a pre-shared key for the pair test, long enough"
OTHER_PSK = "another pre-shared key that does not match at all"


def _site(make_appliance, host: str):
    a = make_appliance(site=True, listen=[f"{host}:0"])
    c = a.client()
    first_admin_login(c)
    sh = first_site_login(c)
    return a, c, sh


def set_psk(c, sh, psk: str) -> None:
    ok(c.put("/api/config/settings/inter-appliance-psk", headers=sh, json={"psk": psk}))


def cli(a, *args, check=True):
    env = {**a.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD}
    cp = run_cli("failover", *args, env=env)
    if check:
        assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp


def status(c, sh) -> dict:
    return ok(c.get("/api/failover/status", headers=sh))


def in_sync(pc, psh, bc, bsh) -> bool:
    """The backup has applied the primary's whole log, asked of both (the backup alone knows the primary's
    head only as of its last batch or heartbeat: a write just made is not yet counted in its lag)."""
    head = status(pc, psh)["sync"]["head"]
    return (status(bc, bsh).get("sync") or {}).get("applied_seq") == head


@pytest.fixture
def pair(make_appliance):
    """Two appliances with the same site and pre-shared key, not paired yet. Not on 127.0.0.1: that is
    where the tests' own requests come from, and links are cut by address (netcut.py)."""
    p, pc, psh = _site(make_appliance, "127.0.0.3")
    b, bc, bsh = _site(make_appliance, "127.0.0.2")
    set_psk(pc, psh, PSK)
    set_psk(bc, bsh, PSK)
    yield p, pc, psh, b, bc, bsh
    pc.close()
    bc.close()


def peer_addr(a) -> str:
    return a.info["listen"][0]
