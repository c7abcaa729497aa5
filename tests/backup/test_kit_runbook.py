"""The recovery kit's pure parts: `--map OLD=NEW` parsing and the runbook's
rebuild steps written from a kit manifest (placeholders for the replacement's
addresses, one `tether` command per step, at most six steps)."""

import pytest

from tether.backup import runbook
from tether.core.errors import Invalid
from tether.runtime.recover import parse_maps

MANIFEST = {
    "kit_id": "ab12cd34", "appliance_version": "1.2.1", "serial_number": "TA1", "model": "T-100",
    "hostname": "support.example.com", "created_at": "2026-12-02T08:00:00Z", "file_name": "kit.tkit",
    "listen": [{"host": "192.0.2.10", "port": 443}, {"host": "127.0.0.1", "port": 8443}],
    "configured_addresses": ["192.0.2.10", "2001:db8::10"],
    "certificates": [{"name": "site", "p12": "certificates/2-site.p12", "pem": "certificates/2-site.pem",
                      "addresses": ["192.0.2.10"], "fingerprint_sha256": "AA:BB", "subject": "support.example.com",
                      "issuer": "CA", "not_after": "2027-12-01T00:00:00Z"}],
    "builtin_on": ["127.0.0.1"], "site": None, "vendor_keys": 1, "members": [],
}


@pytest.mark.req("DR-05")
def test_runbook_steps_and_placeholders():
    steps = runbook.commands(MANIFEST)
    assert len(steps) <= 6
    cmds = [c for _t, c in steps if c]
    assert all(c.startswith("tether ") for c in cmds)
    # 127.0.0.1 is on every machine: kept; the others become NEW_ADDRESS_1, _2 in sorted order
    recover = cmds[1]
    assert "--map 192.0.2.10=NEW_ADDRESS_1" in recover and "--map 2001:db8::10=NEW_ADDRESS_2" in recover
    assert "127.0.0.1=" not in recover and cmds[0] == recover + " --dry-run"
    assert cmds[2] == "tether serve --data /var/lib/tether --listen NEW_ADDRESS_1:443 --listen 127.0.0.1:8443"
    assert cmds[3].endswith("--pin-cert /var/lib/tether/recovered/2-site.pem --user admin")
    text = runbook.render(MANIFEST)
    assert "SHA-256 AA:BB" in text and "## Rebuild on new hardware" in text and "No site installed" in text


def test_address_map_parsing():
    assert parse_maps(["192.0.2.10=198.51.100.20", "2001:DB8:0::10=[2001:db8::20]"]) == {
        "192.0.2.10": "198.51.100.20", "2001:db8::10": "2001:db8::20"}
    with pytest.raises(Invalid, match="OLD=NEW"):
        parse_maps(["192.0.2.10"])
    with pytest.raises(Invalid, match="not an IP address"):
        parse_maps(["support.example.com=198.51.100.20"])
