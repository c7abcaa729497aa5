"""OPS-05 with DR-05, APPL-04 and APPL-06 in headless Chromium: the
/appliance Maintenance page downloads the recovery kit (opened afterwards by
`tether kit show` with its password, and with tar, age and zstd), exports and imports the configuration,
and refuses a factory reset that is not confirmed."""

import json
import subprocess

import pytest

from tests.backup.util import age_decrypt_with_passphrase
from tests.browser.axe import blocking
from tests.helpers import NEW_ADMIN_PASSWORD, first_admin_login, first_site_login, run_cli

KIT_PW = "Browser-kit-pass-1"


@pytest.mark.req("OPS-05", "DR-05", "APPL-04", "APPL-06")
def test_maintenance_page_kit_config_and_confirmations(page, make_appliance, tmp_path):
    a = make_appliance(site=True)
    with a.client() as c:
        first_admin_login(c)
        first_site_login(c)
    page.goto(f"{a.url}/appliance/login")
    page.fill("#username", "admin")
    page.fill("#password", NEW_ADMIN_PASSWORD)
    page.click("#login-submit")
    page.click("a[href='/appliance/maintenance']")
    assert page.url.endswith("/appliance/maintenance")
    assert blocking(page) == []  # axe-core, as tests/browser/test_accessibility.py checks every menu page

    # the recovery kit: two passwords that differ are refused, then the download
    page.fill("#kit-password", KIT_PW)
    page.fill("#kit-password-again", KIT_PW + "x")
    page.click("#kit-export")
    assert "differ" in page.inner_text("#error")
    page.fill("#kit-password", KIT_PW)
    page.fill("#kit-password-again", KIT_PW)
    with page.expect_download(timeout=60000) as info:
        page.click("#kit-export")
    kit = tmp_path / info.value.suggested_filename
    info.value.save_as(kit)
    assert kit.name.startswith("tether-kit-") and kit.suffix == ".tkit"
    shown = run_cli("kit", "show", str(kit), env={"TETHER_KIT_PASSWORD": KIT_PW}, check=True).stdout
    assert "## Rebuild on new hardware" in shown and "tether recover --kit " + kit.name in shown
    assert "site-backup.nsb" in shown and "`site-package.tsp`" in shown
    # and with standard tools, as docs/formats/kit.md shows
    out = tmp_path / "open"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(kit), "-C", str(out)], check=True)
    assert json.loads((out / "kit.json").read_text())["format"] == "tether-kit/1"
    age_decrypt_with_passphrase(out / "identity.age", out / "identity.txt", KIT_PW)
    subprocess.run("age -d -i identity.txt payload.tar.zst.age | zstd -d | tar -x", shell=True, check=True, cwd=out)
    manifest = json.loads((out / "manifest.json").read_text())
    names = [m["name"] for m in manifest["members"]]
    assert names[:2] == ["runbook.md", "appliance-config.yaml"] and "site-backup.nsb" in names
    for m in manifest["members"]:
        sha = subprocess.run(["sha256sum", m["name"]], cwd=out, capture_output=True, text=True).stdout.split()[0]
        assert sha == m["sha256"], m["name"]
    assert (out / "runbook.md").read_text().strip() == shown.strip()

    # the configuration: export, change the host name in the file, import it back
    page.goto(f"{a.url}/appliance/maintenance")
    with page.expect_download() as info:
        page.click("#config-export")
    cfg = tmp_path / info.value.suggested_filename
    info.value.save_as(cfg)
    assert cfg.suffix == ".yaml" and "tether-appliance-config/1" in cfg.read_text()
    cfg.write_text(cfg.read_text().replace("hostname: ", "hostname: imported.example.test #", 1))
    page.set_input_files("#config-file", str(cfg))
    page.click("#config-import")
    assert "Imported: networking" in page.inner_text("#notice")
    page.goto(f"{a.url}/appliance/status")
    assert page.inner_text("#hostname") == "imported.example.test"

    # factory reset: a wrong confirmation is refused and nothing is wiped
    page.goto(f"{a.url}/appliance/maintenance")
    page.fill("#reset-confirm", "reset")
    page.click("#factory-reset-submit")
    assert "type 'factory reset' to confirm" in page.inner_text("#error")
    page.goto(f"{a.url}/appliance/site")
    assert page.locator("#site-name").count() == 1
