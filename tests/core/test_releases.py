"""The release catalog (tether.core.releases): version ordering and which
releases a site can be upgraded from."""

from tether.core.releases import CATALOG, Version


def test_version_ordering_and_upgrade_sources():
    assert Version.parse("1.0.1") > Version.parse("1.0.0")
    assert Version.parse("1.1") == Version.parse("1.1.0")
    assert CATALOG.supports_upgrade("1.1.0", "1.0.1")
    assert not CATALOG.supports_upgrade("1.0.1", "1.1.0")
