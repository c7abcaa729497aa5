"""Issue 18 item 3: no stalled opening handshakes. 2,000 WebSocket openings on /client in bursts of
50 at once, each answered (a ping before any hello gets its answer) well within the opening timeout.
The stall seen before was the test client's, not the appliance's (tests/wsclient.py says why); this
uses the asyncio client that tether-jump and tether-rep use, over TLS 1.3."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect

from tests.helpers import pinned_context

OPENINGS, BURST, OPEN_TIMEOUT = 2000, 50, 8.0


async def _open_and_ping(url: str, ctx) -> tuple[str, float]:
    t0 = time.monotonic()
    try:
        async with connect(url, ssl=ctx, open_timeout=OPEN_TIMEOUT, close_timeout=2) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT)
        return "ok", time.monotonic() - t0
    except TimeoutError:
        return "stalled", time.monotonic() - t0
    except Exception as exc:  # noqa: BLE001 - any other failure is reported by kind
        return type(exc).__name__, time.monotonic() - t0


async def _bursts(url: str, ctx) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for _ in range(OPENINGS // BURST):
        out += await asyncio.gather(*(_open_and_ping(url, ctx) for _ in range(BURST)))
    return out


@pytest.mark.req("ROB-02")
def test_two_thousand_openings_in_bursts_none_stalls(appliance):
    url = appliance.url.replace("https://", "wss://").rstrip("/") + "/client"
    results = asyncio.run(_bursts(url, pinned_context(appliance.cert_path)))
    failed = [r for r in results if r[0] != "ok"]
    assert len(results) == OPENINGS
    assert not failed, f"{len(failed)} of {OPENINGS} openings failed: {failed[:5]}"
    with appliance.client() as c:
        assert c.get("/health").status_code in (200, 503)  # still answering
