"""OPS-05: the browsable API documentation works air-gapped. Headless
Chromium with every non-loopback request refused loads /api/docs and
/appliance/api/docs on the appliance and /api/docs on the desk, and Swagger
UI renders their operations from assets the package serves, within each
face's Content-Security-Policy."""

from urllib.parse import urlsplit

import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def offline(context) -> list[str]:
    """Refuse every request that would leave the machine; the refused URLs are returned (filled in)."""
    refused: list[str] = []

    def handle(route):
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", handle)
    return refused


def rendered_operations(page, url: str, csp_errors: list[str]) -> int:
    page.goto(url)
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator("html").get_attribute("lang") == "en"
    assert not csp_errors, csp_errors
    return page.locator(".opblock").count()


@pytest.mark.req("OPS-05")
def test_api_docs_render_with_the_network_off_on_both_faces_and_the_desk(browser, ready_site, desk_factory):
    a, _c, _ah, _sh = ready_site
    desk = desk_factory()
    context = browser.new_context(ignore_https_errors=True)
    try:
        refused = offline(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        csp_errors: list[str] = []
        page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
        assert rendered_operations(page, f"{a.url}/api/docs", csp_errors) > 10
        assert page.locator(".opblock-summary-path", has_text="/oauth/token").count() >= 1
        assert rendered_operations(page, f"{a.url}/appliance/api/docs", csp_errors) > 10
        assert page.locator(".opblock-summary-path", has_text="/session").count() >= 1
        assert rendered_operations(page, f"{desk.url}/api/docs", csp_errors) > 5
        assert refused == [], refused  # nothing tried to leave the machine
    finally:
        context.close()
