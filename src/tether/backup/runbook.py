"""The runbook a recovery kit carries (``runbook.md``): this appliance's
addresses, host name and certificate fingerprints, then the rebuild on new
hardware as numbered steps, each Tether command alone on a line in a
``sh`` block, in the order to run them (docs/formats/kit.md says how tools
read it). Placeholders: ``NEW_ADDRESS`` (``NEW_ADDRESS_2``...) for the
replacement's addresses and ``/var/lib/tether`` for its data directory."""

from __future__ import annotations

from tether.core.netaddr import host_port

DATA = "/var/lib/tether"
KEEP = {"127.0.0.1", "::1"}  # on every machine: never mapped


def placeholders(addresses: list[str]) -> dict[str, str]:
    """Kit address -> the placeholder the runbook writes for the replacement's address."""
    moved = [a for a in addresses if a not in KEEP]
    if len(moved) == 1:
        return {moved[0]: "NEW_ADDRESS"}
    return {a: f"NEW_ADDRESS_{i}" for i, a in enumerate(moved, 1)}


def kit_addresses(m: dict) -> list[str]:
    from tether.certs import assign
    from tether.core.errors import Invalid

    found = {x["host"] for x in m["listen"]} | set(m["configured_addresses"])
    for c in m["certificates"]:
        found |= set(c["addresses"])
    out = set()
    for a in found:
        try:
            out.add(assign.normalize(a))
        except Invalid:
            continue
    return sorted(out - {"0.0.0.0", "::"})


def commands(m: dict) -> list[tuple[str, str | None]]:
    """The rebuild's steps: (what to do, the command or None for a step outside Tether)."""
    ph = placeholders(kit_addresses(m))
    kit = m["file_name"]
    maps = " ".join(f"--map {a}={p}" for a, p in ph.items())
    recover = f"tether recover --kit {kit} --data {DATA}" + (f" {maps}" if maps else "")
    listens = " ".join(f"--listen {host_port(ph.get(x['host'], x['host']), x['port'])}" for x in m["listen"]) \
        or "--listen NEW_ADDRESS:443"
    first = m["listen"][0] if m["listen"] else {"host": "NEW_ADDRESS", "port": 443}
    url = f"https://{host_port(ph.get(first['host'], first['host']), first['port'])}"
    presented = next((c for c in m["certificates"] if first["host"] in c["addresses"]), None)
    pin = f"{DATA}/recovered/{presented['pem'].split('/', 1)[1]}" if presented else f"{DATA}/builtin-cert.pem"
    where = ", ".join(f"{p}" for p in ph.values()) or "the replacement's address"
    steps: list[tuple[str, str | None]] = [
        ("See the plan: the kit is opened and checked, nothing is changed.", recover + " --dry-run"),
        ("Rebuild: initialise, vendor keys, site package, /appliance configuration, certificates and their "
         "addresses, site restore (asks for the kit password, or reads TETHER_KIT_PASSWORD).", recover),
        ("Start the appliance (or start its service, with these --listen addresses).",
         f"tether serve --data {DATA} {listens}"),
        (f"Swing the host name: point {m['hostname']} at {where} in DNS (or in the hosts file your clients "
         "read). The original clients reconnect by themselves; nothing is redeployed.", None),
        ("Check: the site answers with the original certificate, the clients are counted under "
         "connected_clients (asks for the site admin's password).",
         f"tether site info --url {url} --pin-cert {pin} --user admin"),
    ]
    return steps


def render(m: dict) -> str:
    lines = [f"# Recovery runbook for {m['hostname']} (appliance {m['serial_number']})", "",
             f"Kit `{m['file_name']}` (kit id {m['kit_id']}), made {m['created_at']} by Tether "
             f"{m['appliance_version']} on a {m['model']}.", "", "## This appliance", "",
             f"- Host name: {m['hostname']}",
             "- Listened on: " + (", ".join(host_port(x["host"], x["port"]) for x in m["listen"]) or "-"),
             "- Addresses under Networking: " + (", ".join(m["configured_addresses"]) or "-")]
    for c in m["certificates"]:
        lines.append(f"- Certificate {c['name']!r} on {', '.join(c['addresses'])}: SHA-256 "
                     f"{c['fingerprint_sha256']}, issued to {c['subject']} by {c['issuer']}, "
                     f"valid to {c['not_after']} (`{c['p12']}`, `{c['pem']}`)")
    if m["builtin_on"]:
        lines.append(f"- The built-in certificate on {', '.join(m['builtin_on'])} (a replacement has its own)")
    s = m["site"]
    if s:
        lines.append(f"- Site {s['name']} {s['version']} ({s['edition']}), {s['users']} users; backup "
                     f"{s['backup_id']} taken for this kit at {s['backup_created_at']} (`site-backup.nsb`, "
                     "without logged history)")
        lines.append("- Site package: " + ("`site-package.tsp`" if s["package"] else
                                             "NOT in the kit (installed before packages were kept): give "
                                             "`tether recover` the package with --site-package FILE"))
    else:
        lines.append("- No site installed")
    lines.append(f"- Trusted vendor keys: {m['vendor_keys']} (`vendor-keys/`)")
    lines += ["- The .p12 files and `site-backup.nsb` have the kit's password.",
              "- Not in the kit: secrets the configuration export leaves out (the SMTP password, the support "
              "desk token): enter them again under /appliance > Security after the rebuild; the /appliance "
              "admin password (the replacement starts with admin / password).", "",
              "## Rebuild on new hardware", "",
              f"On the replacement: Tether {m['appliance_version']} installed (`tether version`), this kit "
              f"copied to the current directory, and `{DATA}` (its data directory) not created yet. "
              "Replace NEW_ADDRESS with the replacement's address.", ""]
    for i, (what, cmd) in enumerate(commands(m), 1):
        lines.append(f"{i}. {what}")
        if cmd:
            lines += ["", "   ```sh", f"   {cmd}", "   ```"]
        lines.append("")
    return "\n".join(lines)
