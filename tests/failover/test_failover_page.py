"""/login Management > Failover in a real browser (FO-02, FO-06, OPS-05): the
pre-shared key is set and failover established from the primary's page,
both pages show the pair, and "Become primary" on the backup's page swaps
the roles."""

from __future__ import annotations

import pytest

from tests.helpers import NEW_SITE_PASSWORD, wait_for

from .pairs import peer_addr, status


def login(page, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", "admin")
    page.fill("#password", NEW_SITE_PASSWORD)
    page.click("#login-submit")
    assert page.url.endswith("/login/status")


@pytest.mark.req("FO-02", "FO-06", "OPS-05")
def test_establish_and_swap_from_the_failover_page(page, pair):
    p, pc, psh, b, bc, bsh = pair
    login(page, p.url)
    page.goto(f"{p.url}/login/failover")
    assert "none" in page.inner_text("#role") and page.inner_text("#psk-set") == "set"
    page.fill("#psk", "short")
    page.click("#set-psk")
    assert "psk" in page.inner_text("#error")  # a clear error, nothing changed
    page.fill("#peer_address", peer_addr(b))
    page.click("#establish")
    assert "established" in page.inner_text("#notice")
    assert "primary" in page.inner_text("#role") and peer_addr(b) in page.inner_text("#peer")
    wait_for(lambda: status(bc, bsh)["role"] == "backup", 10, what="the backup role")

    login(page, b.url)  # the backup's /login still shows status and the Failover page
    page.goto(f"{b.url}/login/failover")
    assert "backup" in page.inner_text("#role")
    page.click("#become-primary")
    assert "now the primary" in page.inner_text("#notice")
    assert "primary" in page.inner_text("#role")
    wait_for(lambda: status(pc, psh)["role"] == "backup", 15, what="the old primary stepping down")
