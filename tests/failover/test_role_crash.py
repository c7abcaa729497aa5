"""ROB-01 (role change), FO-06: role changes killed with SIGKILL at a seeded
sample of their crash points, each in a forked child running the
appliance's own role-change code over a real data directory opened offline
(tests/failover/rolefork.py says exactly what runs and what is checked):
the old primary asked to step down, a primary yielding to a newer one,
become-primary --force with the peer gone, and a planned swap against a
real primary (``tether serve``). After each kill: role.json valid and the
old or the new role, the appliance reads it back, never two primaries at
one generation, acknowledged writes kept, and an interrupted swap that
leaves both backup mended by the runbook. Every point of every scenario
(>= 200) is played by bench/failover_role_crash.py; the slower variant
that restarts real processes and settles the pair is rolecrash.py."""

from __future__ import annotations

import random

import pytest

from .rolefork import SCENARIOS, ForkLab

SEED = 14
KILLS = 4  # per scenario
PLAYED = ("demote", "yield", "force-primary", "swap")


@pytest.fixture
def lab(tmp_path):
    lab = ForkLab(tmp_path, ("127.0.8.3", "127.0.8.2"), "127.0.8.4")
    try:
        lab.build(("manual",))
        yield lab
    finally:
        lab.close()


@pytest.mark.req("ROB-01", "FO-06")
@pytest.mark.timeout(240)
def test_role_changes_killed_at_sampled_points_leave_old_or_new_roles_and_one_primary(lab):
    rng = random.Random(SEED)
    story = []
    for name in PLAYED:
        scen = SCENARIOS[name]
        labels, traced = lab.trace(scen)
        assert not traced.problems, (name, traced.problems)
        assert "write role.json: renamed" in labels, (name, labels)
        ks = sorted(rng.sample(range(1, len(labels) + 1), min(KILLS, len(labels))))
        for k in ks:
            out = lab.run(scen, k)
            story.append((name, k, out.label, out.state, out.no_primary))
            assert out.killed and out.label == labels[k - 1], (name, k, out.label, labels[k - 1], out.problems)
            assert not out.problems, f"{name} killed at {k} ({out.label}): {out.problems}; so far: {story}"
