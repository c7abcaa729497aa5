"""axe-core (npm's package, installed into .venv/node by
scripts/install-system-deps) run in a page without loosening its
Content-Security-Policy: the engine goes in through Playwright's evaluate
(the DevTools protocol, which the page's CSP does not govern), never as an
inline script tag. ``blocking(page)`` is what fails a page: every violation
axe rates critical or serious, and the few lesser rules of ``ALSO``."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parents[2] / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("critical", "serious")
# lesser rules these faces also keep to (issue 22): one main landmark, all content in landmarks, no empty
# table header
ALSO = ("landmark-one-main", "region", "empty-table-header")


@cache
def _source() -> str:
    if not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing; scripts/install-system-deps installs axe-core with npm")
        pytest.skip("axe-core is not installed (run scripts/install-system-deps)")
    return AXE.read_text()


def violations(page) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_source() + "\n;undefined")
    return page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")


def blocking(page, also: tuple[str, ...] = ALSO) -> list[dict]:
    return [v for v in violations(page) if v["impact"] in BLOCKING or v["id"] in also]
