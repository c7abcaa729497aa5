"""The backup's sync status (failover/worker.py SyncStatus): what the status
page, the API and the CLI show of lag and apply delays (FO-02)."""

from __future__ import annotations

from tether.failover.worker import SyncStatus


def _delays(values) -> dict:
    st = SyncStatus()
    st.delays_ms.extend(values)
    return st.public()["apply_delay_ms"]


def test_apply_delay_percentiles_are_nearest_rank():
    assert _delays([]) == {"p50": None, "p99": None, "samples": 0}
    assert _delays([7.0]) == {"p50": 7.0, "p99": 7.0, "samples": 1}
    two = _delays([10.0, 20.0])
    assert two["p99"] == 20.0 and two["p50"] == 15.0  # p99 is never below the median
    hundred = _delays([float(i) for i in range(1, 101)])
    assert hundred["p99"] == 99.0 and hundred["p50"] == 50.5
    many = _delays([float(i) for i in range(1, 1001)])
    assert many["p99"] == 990.0
