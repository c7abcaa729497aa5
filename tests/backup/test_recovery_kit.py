"""DR-05 with real processes and the CLI: appliance A (its own CA-signed
certificate assigned, a jump client deployed and connected, users,
settings) writes its recovery kit with `tether kit export` (or, in the
browser variant, with the button of /appliance Maintenance in Chromium, and
the recovered site's Clients page is checked there too); A is killed and
its data directory deleted; on B, at another loopback address, exactly the
commands of the runbook the kit carries are run (`tether recover --kit`,
`tether serve`, the host-name swing, a check), and the original jump client
comes back by itself, with the users and settings of A. Wrong password,
truncated and tampered kits and an address this machine lacks are refused
before anything is written."""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tether.backup.kit import open_kit
from tether.clients.trust import pin_of_pem
from tether.core.errors import IntegrityError
from tests.certs.conftest import Pki
from tests.certs.e2e import p12
from tests.clients.conftest import SITE_HOST, Clients, Hosts, online
from tests.helpers import (NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, TETHER, browser_login, first_admin_login, first_site_login,
                           free_port, ok, run_cli, stop_process, wait_for)

KIT_PW = "Kit-password-1-long"
A_IP, B_IP, B_IP2 = "127.0.31.1", "127.0.31.2", "127.0.31.3"
ELSEWHERE = "192.0.2.10"  # TEST-NET-1: configured on A, on no interface of this machine


def _steps(runbook: str) -> list[tuple[str, str | None]]:
    """The numbered steps of "Rebuild on new hardware": (text, the command in its sh block or None)."""
    section = runbook.split("## Rebuild on new hardware", 1)[1]
    steps: list[tuple[str, str | None]] = []
    lines = section.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\d+\. ", line):
            cmd = None
            for nxt in lines[i + 1:]:
                if re.match(r"^\d+\. ", nxt):
                    break
                if nxt.strip().startswith("tether "):
                    cmd = nxt.strip()
                    break
            steps.append((line, cmd))
    return steps


def _export_in_browser(page, url: str, out: Path) -> Path:
    """The recovery kit through /appliance Maintenance (its button), saved into ``out``."""
    browser_login(page, f"{url}/appliance/login", NEW_ADMIN_PASSWORD)
    page.click("a[href='/appliance/maintenance']")
    page.fill("#kit-password", KIT_PW)
    page.fill("#kit-password-again", KIT_PW)
    with page.expect_download(timeout=60000) as info:
        page.click("#kit-export")
    out.mkdir(exist_ok=True)
    kit = out / info.value.suggested_filename
    info.value.save_as(kit)
    return kit


def _jump_client_row_in_browser(page, url: str, name: str) -> str:
    """The status cell of jump client ``name`` on /login Clients, as a site admin sees it."""
    browser_login(page, f"{url}/login", NEW_SITE_PASSWORD)
    page.goto(f"{url}/login/clients")
    return page.inner_text(f"#jump-clients tr[data-name='{name}'] td.status")


@pytest.mark.req("DR-05", "CL-03", "OPS-02")
@pytest.mark.parametrize("face", ["cli", "browser"])
def test_kit_export_kill_recover_on_another_address_by_the_runbook(make_appliance, tmp_path, request, face):
    """``face``: the kit exported by `tether kit export`, or by the button of /appliance Maintenance in Chromium
    (then the recovered site's Clients page shows the original jump client online, too)."""
    port = free_port(A_IP)
    a = make_appliance(site=True, listen=[f"{A_IP}:{port}"])
    c = a.client()
    ah, sh = first_admin_login(c), first_site_login(c)

    # the site's own CA-signed certificate (named for the host, not the address), assigned to A's address
    pki = Pki(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    root = pki.root("Kit Root CA")
    inter = pki.intermediate(root, "Kit Intermediate CA")
    leaf = pki.leaf(inter, fqdn=SITE_HOST)
    cert = ok(c.post("/appliance/api/certificates/import", headers=ah,
                     files={"file": ("site.p12", p12(leaf, [inter, root]))},
                     data={"password": "import-pass-1", "name": "site"}), 201)
    ok(c.put(f"/appliance/api/certificate-assignments/{A_IP}", headers=ah, json={"id": cert["id"]}))
    leaf_pem = tmp_path / "site.pem"
    leaf_pem.write_text(leaf.pem)
    # settings and users
    net = ok(c.get("/appliance/api/networking", headers=ah))
    net["hostname"] = SITE_HOST
    net["interfaces"] = [{"name": "eth0", "addresses": [{"address": A_IP, "netmask": "32"},
                                                         {"address": ELSEWHERE, "netmask": "24"}]}]
    net["dns_servers"] = ["192.0.2.53"]
    ok(c.put("/appliance/api/networking", headers=ah, json=net))
    sec = ok(c.get("/appliance/api/security", headers=ah))
    sec["tls"]["min_version"] = "TLSv1.3"
    sec["administration"]["allowed_networks"] = ["127.0.0.0/8"]
    ok(c.put("/appliance/api/security", headers=ah, json=sec))
    for name in ("rep-ann", "rep-bob"):
        ok(c.post("/api/users", headers=sh, json={"username": name, "password": "Initial-pass-1",
                                                  "display_name": name, "is_admin": False,
                                                  "permissions": []}), 201)
    users_a = sorted(u["username"] for u in ok(c.get("/api/users", headers=sh)))
    settings_a = {s: ok(c.get(f"/appliance/api/{s}", headers=ah)) for s in ("networking", "security")}

    # a jump client deployed and connected by the host name, pinned to the site certificate's key
    hosts = Hosts(tmp_path / "hosts")
    hosts.point(A_IP)
    clients = Clients(tmp_path / "clients", hosts)
    clients.tmp.mkdir()
    try:
        dep = clients.deploy(c, sh, "jump", pin=pin_of_pem(leaf.pem))
        clients.install("jump", port, dep["token"], "db-01")
        jump = clients.run("jump", "db-01", "--max-backoff", "2")
        wait_for(lambda: online(c, sh, "jump", "db-01"), what="db-01 online on A")
        c.close()

        # the kit, over HTTPS pinned to the site's own CA-signed certificate (issue 17 item 2)
        env = {"TETHER_PASSWORD": NEW_ADMIN_PASSWORD, "TETHER_KIT_PASSWORD": KIT_PW}
        kits = tmp_path / "kits"
        page = request.getfixturevalue("page") if face == "browser" else None
        if page is not None:
            kit = _export_in_browser(page, f"https://{A_IP}:{port}", kits)
        else:
            r = run_cli("kit", "export", "--out", str(kits), "--url", f"https://{A_IP}:{port}",
                        "--pin-cert", str(leaf_pem), "--json", env=env, check=True)
            kit = Path(json.loads(r.stdout)["file"])
            assert kit.stat().st_mode & 0o077 == 0
        assert kit.suffix == ".tkit" and kit.name.startswith("tether-kit-")

        with httpx.Client(base_url=f"https://{A_IP}:{port}", verify=_pin(leaf_pem), timeout=30) as c:
            audit = ok(c.get("/appliance/api/audit?limit=20", headers=ah))
        assert any(e["action"] == "kit.export" and e["target"] == kit.name for e in audit)
        # A dies with its data
        a.stop(signal.SIGKILL)
        shutil.rmtree(a.data)

        # the runbook, read from the kit on the replacement
        shown = run_cli("kit", "show", str(kit), env=env, check=True).stdout
        assert SITE_HOST in shown and f"{A_IP}:{port}" in shown
        assert leaf_fingerprint(leaf) in shown
        steps = _steps(shown)
        assert len(steps) <= 6, steps

        data_b = tmp_path / "b-data"
        place = {"/var/lib/tether": str(data_b), kit.name: str(kit), "NEW_ADDRESS_1": B_IP, "NEW_ADDRESS_2": B_IP2}

        def concrete(cmd: str) -> list[str]:
            for k, v in place.items():
                cmd = cmd.replace(k, v)
            return shlex.split(cmd)

        # a bad kit, a wrong password, an address this machine lacks: refused, nothing written
        recover_cmd = concrete(next(cmd for _t, cmd in steps if cmd and "recover" in cmd and "--dry-run" not in cmd))
        assert recover_cmd[0] == "tether"
        cp = run_cli(*recover_cmd[1:], env={**env, "TETHER_KIT_PASSWORD": "Wrong-password-1"})
        assert cp.returncode != 0 and "wrong password for this recovery kit" in cp.stderr, cp.stderr
        assert not data_b.exists()
        raw = kit.read_bytes()
        flipped = bytearray(raw)
        flipped[len(raw) // 2] ^= 0x01
        for damaged, words in ((raw[: len(raw) // 2], "truncated"), (bytes(flipped), "damaged or was altered")):
            bad = tmp_path / "bad.tkit"
            bad.write_bytes(damaged)
            with pytest.raises(IntegrityError, match=words):
                open_kit(bad, KIT_PW, tmp_path / "unpacked")  # what `tether recover` opens first
            shutil.rmtree(tmp_path / "unpacked", ignore_errors=True)
        unmapped = _without_map(recover_cmd[1:], ELSEWHERE)
        cp = run_cli(*unmapped, env=env)
        assert cp.returncode == 2 and f"the kit's address {ELSEWHERE} is not on this machine" in cp.stderr
        assert f"--map {ELSEWHERE}=" in cp.stderr and not data_b.exists()

        # exactly the runbook's steps, in order
        serve, log = None, open(tmp_path / "b-serve.log", "ab")
        began = time.monotonic()
        try:
            for text, cmd in steps:
                if cmd is None:
                    assert "Swing the host name" in text and SITE_HOST in text
                    hosts.point(B_IP)  # the DNS / hosts-file change the step asks for
                    continue
                args = concrete(cmd)
                if args[1] == "serve":
                    serve = subprocess.Popen([TETHER, *args[1:]], stdout=log, stderr=subprocess.STDOUT)
                    wait_for(lambda: _health(B_IP, port, data_b), timeout=30, what="B serving")
                    continue
                if args[1] == "site" and args[2] == "info":
                    wait_for(lambda: _online_on(B_IP, port, data_b), timeout=30,
                             what=lambda: "db-01 back on B: " + jump.text()[-600:])
                    rebuilt = time.monotonic() - began
                    cp = run_cli(*args[1:], env={"TETHER_PASSWORD": NEW_SITE_PASSWORD}, check=True)
                    assert re.search(r"^connected_clients\.jump_clients\s+1$", cp.stdout, re.M), cp.stdout
                    continue
                cp = run_cli(*args[1:], env=env, check=True)
                assert cp.stdout.index("Plan:") < cp.stdout.index("Dry run" if "--dry-run" in args else "Recovered:")
                if "--dry-run" in args:
                    assert "Plan:" in cp.stdout and "Dry run: nothing was changed." in cp.stdout
                    assert f"address {A_IP} -> {B_IP}" in cp.stdout and not data_b.exists()
                    assert "Install site package demo" in cp.stdout  # A kept the package it installed
                    assert "Import certificate 'site'" in cp.stdout and leaf_fingerprint(leaf) in cp.stdout
            print(f"\nrebuild (recover, serve, swing, client back): {rebuilt:.1f} s; "
                  f"{len(steps)} runbook steps, {sum(1 for _t, x in steps if x)} commands")

            assert not list(tmp_path.glob(".tether-kit-*")), "the kit's unpacked members are removed"
            # a recovery never writes over an appliance
            cp = run_cli(*recover_cmd[1:], env=env)
            assert cp.returncode == 5 and "is not empty" in cp.stderr, cp.stderr
            # the original client (same process, never redeployed), users and settings
            assert jump.proc.poll() is None
            cb = httpx.Client(base_url=f"https://{B_IP}:{port}", verify=_pinned(data_b), timeout=30)
            bh = {"Authorization": "Bearer " + ok(cb.post("/api/session", json={
                "username": "admin", "password": NEW_SITE_PASSWORD}))["token"]}
            assert sorted(u["username"] for u in ok(cb.get("/api/users", headers=bh))) == users_a
            jumps = ok(cb.get("/api/clients", headers=bh))["jump_clients"]
            assert [j["name"] for j in jumps] == ["db-01"] and jumps[0]["online"]
            bah = {"Authorization": "Bearer " + ok(cb.post("/appliance/api/session", json={
                "username": "admin", "password": "password"}))["token"]}
            ok(cb.post("/appliance/api/password", headers=bah, json={"current_password": "password",
                                                                    "new_password": NEW_ADMIN_PASSWORD}))
            net_b = ok(cb.get("/appliance/api/networking", headers=bah))
            expected = json.loads(json.dumps(settings_a["networking"]).replace(f'"{A_IP}"', f'"{B_IP}"')
                                  .replace(f'"{ELSEWHERE}"', f'"{B_IP2}"'))
            assert net_b == expected
            assert ok(cb.get("/appliance/api/security", headers=bah)) == settings_a["security"]
            listing = ok(cb.get("/appliance/api/certificates", headers=bah))
            assert listing["assignments"] == {B_IP: next(x["id"] for x in listing["certificates"]
                                                         if x["name"] == "site")}
            cb.close()
            if page is not None:
                assert _jump_client_row_in_browser(page, f"https://{B_IP}:{port}", "db-01") == "online"
        finally:
            stop_process(serve)
            log.close()
    finally:
        for p in clients.procs:
            p.stop()


def leaf_fingerprint(node) -> str:
    from cryptography.hazmat.primitives import hashes

    return node.cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _without_map(args: list[str], old: str) -> list[str]:
    out, skip = [], False
    for i, x in enumerate(args):
        if skip:
            skip = False
            continue
        if x == "--map" and args[i + 1].startswith(f"{old}="):
            skip = True
            continue
        out.append(x)
    return out


def _pinned(data_b) -> ssl.SSLContext:
    return _pin(next((data_b / "recovered").glob("*.pem")))


def _pin(pem: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pem))
    ctx.check_hostname = False
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def _health(host: str, port: int, data_b) -> bool:
    try:
        return httpx.get(f"https://{host}:{port}/health", verify=_pinned(data_b), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _online_on(host: str, port: int, data_b) -> bool:
    with httpx.Client(base_url=f"https://{host}:{port}", verify=_pinned(data_b), timeout=5) as cb:
        tok = cb.post("/api/session", json={"username": "admin", "password": NEW_SITE_PASSWORD}).json()["token"]
        return online(cb, {"Authorization": f"Bearer {tok}"}, "jump", "db-01")
