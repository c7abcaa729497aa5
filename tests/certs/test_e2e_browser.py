"""OPS-05 with CERT-04/05/06: the /appliance Certificates page driven by a
real headless Chromium (Playwright): first login and forced password
change, upload of a .p12 with its password, the listing with "Private key:
yes", assignment to the second listener's address; then a TLS client
checks that this address presents the uploaded certificate and its chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD

from .e2e import P12_PASS, TWO, der, live_pki, p12, presented_chain, presented_leaf, verified_handshake



@pytest.mark.req("OPS-05", "CERT-04", "CERT-06")
def test_import_then_assign_in_the_browser(make_appliance, browser, tmp_path):
    live = live_pki()
    a = make_appliance(listen=TWO)
    two = a.info["listen"][1]
    builtin = der(Path(a.cert_path).read_text())
    p12_file = tmp_path / "site.p12"
    p12_file.write_bytes(p12(live.leaf, [live.inter, live.root]))
    bad_file = tmp_path / "damaged.p12"
    bad_file.write_bytes(p12_file.read_bytes()[:150])

    context = browser.new_context(ignore_https_errors=True)  # the appliance still shows its built-in certificate
    try:
        page = context.new_page()
        page.goto(a.url + "/appliance/login")
        page.fill("#username", "admin")
        page.fill("#password", "password")
        page.click("#login-submit")
        page.wait_for_url("**/appliance/password")
        assert page.is_visible("#must-change")
        page.fill("#current_password", "password")
        page.fill("#new_password", NEW_ADMIN_PASSWORD)
        page.fill("#confirm_password", NEW_ADMIN_PASSWORD)
        page.click("#password-submit")
        page.wait_for_url("**/appliance/status")

        page.click("nav >> text=Certificates")
        page.wait_for_url("**/appliance/certificates")
        assert page.locator("section.certificate").count() == 1
        assert "can never be exported" in page.inner_text("section.certificate")

        # a damaged file is refused with a clear message and nothing is added
        page.set_input_files("#import-file", str(bad_file))
        page.fill("#import-password", P12_PASS)
        page.fill("#import-name", "site")
        page.click("#import")
        assert "not a valid PKCS#12 file" in page.inner_text("#error")
        assert page.locator("section.certificate").count() == 1

        page.set_input_files("#import-file", str(p12_file))
        page.fill("#import-password", P12_PASS)
        page.fill("#import-name", "site")
        page.click("#import")
        assert "Certificate 'site' imported" in page.inner_text("#notice")
        card = page.locator('section.certificate[data-name="site"]')
        text = card.inner_text()
        assert "Private key\tyes" in text and "support.example.com" in text and "Live Intermediate CA" in text
        assert card.locator(".warning").count() == 0

        page.select_option("#assign-id", label="site (ca-signed)")
        page.select_option("#assign-address", "127.0.0.2")
        page.click("#assign")
        assert "127.0.0.2 now presents 'site'" in page.inner_text("#notice")
        card = page.locator('section.certificate[data-name="site"]')
        assert "127.0.0.2" in card.locator(".addresses").inner_text()
    finally:
        context.close()

    # a TLS client on that address gets the uploaded certificate with its chain; the other keeps the built-in
    assert presented_chain(two) == [der(live.leaf), der(live.inter), der(live.root)]
    assert verified_handshake(two, live.root) == der(live.leaf)
    assert presented_leaf(a.info["listen"][0]) == builtin
