"""The arithmetic under CL-03 and CL-04: the clients' capped exponential
backoff with full jitter, and the appliance's admission pacer, which admits
at the configured rate and gives each refused caller a distinct later slot."""

import random

import pytest

from tether.clients.hub import Pacer
from tether.clients.transport import Backoff, read_hosts_file, split_site


@pytest.mark.req("CL-03")
def test_backoff_is_capped_exponential_with_full_jitter():
    b = Backoff(base=0.5, cap=30.0, rng=random.Random(1))
    waits = [b.next() for _ in range(200)]
    assert all(0 <= w <= 30.0 for w in waits)
    assert all(w <= 0.5 * 2**i for i, w in enumerate(waits[:6]))  # the ceiling doubles: 0.5, 1, 2, 4 ...
    late = waits[10:]
    assert max(late) > 25 and min(late) < 5  # full jitter over [0, cap] once capped: no synchronised herd
    b.reset()
    assert b.next() <= 0.5


@pytest.mark.req("CL-03")
def test_hosts_file_override_is_read_at_each_call(tmp_path):
    f = tmp_path / "hosts"
    f.write_text("# lab\n127.0.0.3 other support.example.test\n")
    assert read_hosts_file(f, "SUPPORT.example.test") == "127.0.0.3"
    f.write_text("127.0.0.4 support.example.test\n")
    assert read_hosts_file(f, "support.example.test") == "127.0.0.4"
    assert read_hosts_file(f, "unknown.test") is None and read_hosts_file(tmp_path / "none", "x") is None
    assert split_site("h.example:8443") == ("h.example", 8443) and split_site("h.example") == ("h.example", 443)
    assert split_site("[::1]:9") == ("::1", 9)


@pytest.mark.req("CL-04")
def test_pacer_admits_at_the_rate_and_spreads_the_rest():
    p = Pacer()
    rate, now = 50, 1000.0
    admitted = sum(p.admit(rate, now) is None for _ in range(400))
    assert admitted == rate  # a burst of one second's worth
    waits = [p.admit(rate, now) for _ in range(100)]
    assert all(w is not None for w in waits)
    assert waits == sorted(waits) and len(set(waits)) == 100  # each a distinct later slot, 1/rate apart
    assert waits[-1] == pytest.approx(waits[0] + 99 / rate)
    # over ten simulated seconds of a storm, admissions never exceed the burst plus the rate
    p, t, admitted = Pacer(), 0.0, 0
    while t < 10:
        admitted += sum(p.admit(rate, t) is None for _ in range(20))
        t += 0.01
    assert admitted <= rate + rate * 10 + 1
