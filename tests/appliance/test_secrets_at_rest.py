"""SEC-03: secrets configured through /appliance are sealed at rest with the
per-appliance key and never shown back."""

import pytest

from tests.helpers import first_admin_login

SECRET = "Smtp-relay-secret-7f3a9"


def _files_containing(root, needle: bytes):
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.req("SEC-03", "APPL-03")
def test_smtp_password_is_sealed_and_masked(appliance):
    with appliance.client() as c:
        h = first_admin_login(c)
        sec = c.get("/appliance/api/security", headers=h).json()
        sec["smtp"] = {**sec["smtp"], "host": "127.0.0.1", "port": 2525, "username": "relay", "password": SECRET}
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
        shown = c.get("/appliance/api/security", headers=h).json()
        assert shown["smtp"]["password"] == "********"
        # saving the masked document again keeps the stored secret
        assert c.put("/appliance/api/security", headers=h, json=shown).status_code == 200
    appliance.stop()  # checkpoint the SQLite WAL too
    assert _files_containing(appliance.data, SECRET.encode()) == []
    from tether.appliance.settings import ApplianceSettings
    from tether.core.db import make_engine, sqlite_url
    from tether.core.secretbox import SecretBox

    engine = make_engine(sqlite_url(appliance.data / "appliance.db"))
    try:
        settings = ApplianceSettings(engine, SecretBox.load(appliance.data / "secret.key"))
        assert settings.reveal("security", "smtp", "password") == SECRET
        other = ApplianceSettings(engine, SecretBox(b"\x01" * 32))
        with pytest.raises(Exception, match="does not open"):
            other.reveal("security", "smtp", "password")
    finally:
        engine.dispose()
