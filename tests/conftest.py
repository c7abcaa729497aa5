"""Shared fixtures: a vendor signing key and site packages, real appliance
processes on loopback (fresh, or with a site installed and both first logins
done), a running support desk (tests/desk and the appliance's support link)
and headless Chromium."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

from tests.desk.process import DeskProcess
from tests.helpers import (VENDOR, ApplianceProc, ClockFile, SmtpSink, first_admin_login, first_site_login,
                           run_cli)

_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def cli_session_cache(tmp_path_factory):
    """The CLI's session cache (cli/credentials.py) in this run's temporary directory, not in ~/.cache: the
    commands of one run share it, as one administrator's would, and nothing outlives the run."""
    path = tmp_path_factory.mktemp("cli-cache") / "sessions.json"
    old = os.environ.get("TETHER_SESSION_CACHE")
    os.environ["TETHER_SESSION_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TETHER_SESSION_CACHE", None)
    else:
        os.environ["TETHER_SESSION_CACHE"] = old


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
def clock(tmp_path) -> ClockFile:
    """The wall clock of every appliance the test starts with make_appliance: no offset until the test
    moves it (``clock.advance(seconds)``)."""
    return ClockFile(tmp_path / "clock-offset")


@pytest.fixture
def make_appliance(tmp_path, vendor, clock):
    """Factory: a fresh appliance process (no site unless asked), on the test's ``clock``."""
    started: list[ApplianceProc] = []

    def make(*, listen: list[str] | None = None, site: bool = False, init_args: tuple = (),
             netns: str | None = None) -> ApplianceProc:
        """``netns``: run ``tether serve`` inside that network namespace (``ip netns exec``)."""
        data = tmp_path / f"appliance{next(_counter)}"
        run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), *init_args, check=True)
        if site:
            run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
        a = ApplianceProc(data, listen or ["127.0.0.1:0"], env=clock.env,
                          prefix=["ip", "netns", "exec", netns] if netns else []).start()
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


# --- a support desk (``tether-desk serve``) mailing through a loopback SMTP sink ---
@pytest.fixture(scope="module")
def desk_relay():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def desk_factory(tmp_path_factory, desk_relay):
    """Factory: a running desk (``tether-desk serve`` with extra arguments), stopped at the end of the module."""
    started: list[DeskProcess] = []

    def make(*extra: str) -> DeskProcess:
        d = DeskProcess(tmp_path_factory.mktemp("desk"), desk_relay, list(extra))
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


# --- headless Chromium (Debian's package) through Playwright, for the HTML faces (OPS-05) ---
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    """Function-scoped: Playwright's sync API keeps an event loop running while it is open,
    which would break tests that call asyncio.run() afterwards in the same process."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; scripts/install-system-deps should have installed it")
        pytest.skip("chromium is not installed (run scripts/install-system-deps as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(ignore_https_errors=True)
    pg = ctx.new_page()
    pg.set_default_timeout(15000)
    yield pg
    ctx.close()
