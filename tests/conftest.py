"""Shared fixtures: a vendor signing key and site packages, and real
appliance processes on loopback (fresh, or with a site installed and both
first logins done)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.helpers import VENDOR, ApplianceProc, first_admin_login, first_site_login, run_cli

_counter = itertools.count()


@pytest.fixture(scope="session")
def vendor(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("vendor")
    import subprocess

    subprocess.run([VENDOR, "keygen", "--out", str(d)], check=True, capture_output=True)

    def package(name="demo", edition="remote-support", version=None) -> Path:
        from tether import __version__

        version = version or __version__
        out = d / f"{name}-{edition}-{version}.tsp"
        if not out.exists():
            subprocess.run([VENDOR, "site-package", "build", "--key", str(d / "vendor.key"), "--site-name", name,
                            "--edition", edition, "--version", version, "-o", str(out)], check=True,
                           capture_output=True)
        return out

    return {"dir": d, "key": d / "vendor.key", "pub": d / "vendor.pub", "package": package}


@pytest.fixture
def make_appliance(tmp_path, vendor):
    """Factory: a fresh appliance process (no site unless asked)."""
    started: list[ApplianceProc] = []

    def make(*, listen: list[str] | None = None, site: bool = False, init_args: tuple = ()) -> ApplianceProc:
        data = tmp_path / f"appliance{next(_counter)}"
        run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), *init_args, check=True)
        if site:
            run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
        a = ApplianceProc(data, listen or ["127.0.0.1:0"]).start()
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop()


@pytest.fixture
def appliance(make_appliance) -> ApplianceProc:
    return make_appliance()


@pytest.fixture
def ready_site(make_appliance):
    """An appliance with a site installed and both admin passwords changed.
    Returns (appliance, httpx client, /appliance auth headers, site auth headers)."""
    a = make_appliance(site=True)
    c = a.client()
    ah = first_admin_login(c)
    sh = first_site_login(c)
    yield a, c, ah, sh
    c.close()
