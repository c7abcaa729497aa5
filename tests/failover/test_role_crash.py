"""ROB-01 (role change), FO-06, FO-08: a planned swap of a real pair, the
old primary (a real ``tether serve``) killed with SIGKILL at a seeded sample
of the crash points it passes, restarted on the same data directory: the
pair settles with one primary and its backup at the same generation, never
both serving at one 100 ms /health tick, role.json and orphan files valid,
no acknowledged write lost (tests/failover/rolecrash.py says exactly what
is checked). Every point of every role-change scenario (>= 200) is played by
bench/failover_role_crash.py with the same harness."""

from __future__ import annotations

import random

import pytest

from .rolecrash import SCENARIOS, Lab, pick

SEED = 14
KILLS = 2


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path, ("127.0.8.3", "127.0.8.2"), "127.0.8.4")
    try:
        lab.build(("manual",))
        yield lab
    finally:
        lab.close()


@pytest.mark.req("ROB-01", "FO-06", "FO-08")
@pytest.mark.timeout(300)
def test_a_planned_swap_killed_in_the_old_primary_leaves_one_primary_and_loses_nothing(lab):
    scen = SCENARIOS["swap-sync-old"]
    labels, before, traced = lab.trace(scen)
    assert not traced.problems, traced.problems
    assert traced.final.startswith("b primary"), traced.final
    change = labels[before:]
    assert "role backup: writing" in change and "write role.json: renamed" in change, change
    points = list(range(before + 1, len(labels) + 1))
    outcomes = [lab.run(scen, k) for k in pick(points, KILLS, random.Random(SEED))]
    story = [(o.k, o.label, o.final, o.no_primary) for o in outcomes]
    assert all(o.killed for o in outcomes), story
    for o in outcomes:
        assert not o.problems, f"killed at {o.k} ({o.label}): {o.problems}; all: {story}"
