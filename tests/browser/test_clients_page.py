"""CL-01 in a real browser: the /login "Jump clients" page shows the pin,
creates a jump client deployment whose token and install command are shown
once, a real `tether-jump` installed with that command shows up online,
and the page's Revoke button disconnects it for good (it exits with 3)."""

from __future__ import annotations

import shlex
import subprocess

import httpx
import pytest

from tests.helpers import BIN, NEW_SITE_PASSWORD, stop_process, wait_for

JUMP = str(BIN / "tether-jump")


def _row(page, table: str, name: str):
    return page.locator(f"#{table} tr[data-name='{name}']")


@pytest.mark.req("CL-01")
def test_deploy_watch_and_revoke_a_jump_client_from_the_page(page, ready_site, tmp_path):
    a, c, _ah, h = ready_site
    url = a.url
    port = httpx.URL(url).port
    for kind, body in (("jump-client-groups", {"name": "servers"}),
                       ("jumpoints", {"name": "lab", "hostname": "jp.lab.test", "allowed_networks": ["127.0.0.0/8"]})):
        r = c.post(f"/api/config/{kind}", headers=h, json=body)
        assert r.status_code == 201, r.text
    api_pin = c.get("/api/clients", headers=h).json()["pin"]

    page.goto(f"{url}/login")
    page.fill("#username", "admin")
    page.fill("#password", NEW_SITE_PASSWORD)
    page.click("#login-submit")
    assert page.url.endswith("/login/status")
    page.goto(f"{url}/login/clients")
    assert page.inner_text("#pin") == api_pin
    assert page.inner_text("#connected-jump") == "0"

    # a refused form says why, on the page
    page.fill("#jump-pin", "sha256/not-a-pin")
    page.click("#create-jump-deployment")
    assert "pin: write sha256/" in page.inner_text("#error")
    assert page.input_value("#jump-pin") == "sha256/not-a-pin"  # what was typed is kept

    # an unused deployment can be withdrawn
    page.select_option("#jumpoint-target", "lab")
    page.click("#create-jumpoint-deployment")
    withdrawn = page.inner_text("#new-deployment h2").split()[-1]
    assert page.input_value("#deployment-command").startswith("tether-jumpoint install ")
    page.click(f"#withdraw-{withdrawn}")
    assert f"Deployment {withdrawn} withdrawn" in page.inner_text("#notice")
    assert page.locator(f"#deployments tr[data-id='{withdrawn}']").count() == 0

    # the jump client deployment: token and command shown once
    page.fill("#jump-pin", "")
    page.select_option("#jump-target", "servers")
    page.fill("#jump-validity_days", "2")
    page.click("#create-jump-deployment")
    token = page.inner_text("#deployment-token").strip()
    command = page.input_value("#deployment-command").strip()
    assert token.endswith(api_pin.split("/", 1)[1])  # the token carries the pin
    assert command == f"tether-jump install --site 127.0.0.1:{port} --token {token}"
    dep_id = token.split(".", 1)[0]
    assert "valid" in page.inner_text(f"#deployments tr[data-id='{dep_id}'] .state")
    page.goto(f"{url}/login/clients")
    assert page.locator("#new-deployment").count() == 0 and token not in page.content()

    state = tmp_path / "jump-state"
    args = shlex.split(command)
    assert args[0] == "tether-jump"
    inst = subprocess.run([JUMP, *args[1:], "--state", str(state), "--hostname", "web-01"],
                          capture_output=True, text=True, timeout=60)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    log = open(tmp_path / "jump.out", "wb")
    proc = None
    try:
        proc = subprocess.Popen([JUMP, "run", "--state", str(state)], stdout=log, stderr=subprocess.STDOUT)

        def online():
            page.reload()
            row = _row(page, "jump-clients", "web-01")
            return row.count() == 1 and row.locator(".status").inner_text() == "online"

        wait_for(online, what="the jump client online on the page")
        row = _row(page, "jump-clients", "web-01")
        cells = [x.strip() for x in row.locator("td").all_inner_texts()]
        assert cells[1]  # the host name the client reports
        assert [cells[0], *cells[2:6]] == ["web-01", "linux", "servers", "online", "active"]
        assert page.inner_text("#connected-jump") == "1"
        assert "used" in page.inner_text(f"#deployments tr[data-id='{dep_id}'] .state")
        assert page.locator(f"#withdraw-{dep_id}").count() == 0  # a used deployment stays

        # Revoke: a confirmation first, then the POST
        page.click("#revoke-jump-web-01")
        assert "never works again" in row.locator("details").inner_text()
        row.locator("button.confirm-revoke").click()
        assert "Revoked jump client web-01" in page.inner_text("#notice")
        assert proc.wait(20) == 3
        proc_out = (tmp_path / "jump.out").read_text(errors="replace")
        assert "revoked" in proc_out

        def offline():
            page.reload()
            r = _row(page, "jump-clients", "web-01")
            return r.locator(".status").inner_text() == "offline"

        wait_for(offline, what="the jump client offline on the page")
        row = _row(page, "jump-clients", "web-01")
        assert row.locator(".identity").inner_text() == "revoked"
        assert row.locator("details").count() == 0  # nothing left to revoke
        assert row.locator(".last-seen").inner_text() != "never"
        assert page.inner_text("#connected-jump") == "0"
        assert "revoked" in page.locator("#identities tr", has_text="web-01").locator(".state").inner_text()
    finally:
        stop_process(proc)
        log.close()
