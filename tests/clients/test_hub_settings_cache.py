"""The hub's cached Jump client settings and site name (PERF-08: a storm of
hellos must not read the site database for each): read once per
``SETTINGS_TTL``, at once when another site object is installed (a
restore), and the last known values kept when a read fails."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tether.clients import hub as hub_mod


class FakeSite:
    def __init__(self, name: str, rate: int, heartbeat: int):
        self.name, self.rate, self.heartbeat = name, rate, heartbeat
        self.engine = self
        self.reads = 0
        self.fail = False

    def info(self):
        return SimpleNamespace(name=self.name)


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(hub_mod.time, "monotonic", lambda: now[0])

    def get_model(engine, _section):
        engine.reads += 1
        if engine.fail:
            raise RuntimeError("database gone")
        return SimpleNamespace(connection_rate_per_second=engine.rate, heartbeat_seconds=engine.heartbeat)

    monkeypatch.setattr(hub_mod.sections, "get_model", get_model)
    return now


def test_read_once_per_ttl(clock):
    site = FakeSite("alpha", 120, 30)
    hub = hub_mod.ClientHub(lambda: site)
    assert hub._read_settings() == (120, 30, "alpha")
    site.rate, site.name = 300, "beta"
    clock[0] += hub_mod.SETTINGS_TTL / 2
    assert hub._read_settings() == (120, 30, "alpha") and site.reads == 1
    clock[0] += hub_mod.SETTINGS_TTL
    assert hub._read_settings() == (300, 30, "beta") and site.reads == 2
    assert hub.settings() == (300, 30)


def test_a_new_site_object_is_read_at_once(clock):
    sites = [FakeSite("old", 50, 30)]
    hub = hub_mod.ClientHub(lambda: sites[0])
    assert hub._read_settings() == (50, 30, "old")
    sites[0] = FakeSite("restored", 200, 60)
    assert hub._read_settings() == (200, 60, "restored")


def test_a_failed_read_keeps_the_last_values(clock):
    site = FakeSite("alpha", 120, 30)
    hub = hub_mod.ClientHub(lambda: site)
    hub._read_settings()
    site.fail = True
    clock[0] += hub_mod.SETTINGS_TTL * 2
    assert hub._read_settings() == (120, 30, "alpha")
