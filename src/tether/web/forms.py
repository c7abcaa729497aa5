"""HTML form fields <-> settings documents. Lists are edited as one entry per
line in a textarea; everything is then validated by the same settings models
the JSON API uses, so both faces give the same errors."""

from __future__ import annotations

from tether.core.errors import Invalid


def lines(text: str | None) -> list[str]:
    return [ln.strip() for ln in (text or "").splitlines() if ln.strip()]


def checkbox(form, name: str) -> bool:
    return form.get(name) in ("on", "yes", "true", "1")


def integer(form, name: str, field: str | None = None) -> int:
    raw = (form.get(name) or "").strip()
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{field or name}: {raw!r} is not a whole number", field=field or name) from None


def networking_from_form(form) -> dict:
    interfaces: dict[str, list[dict]] = {}
    for i, ln in enumerate(lines(form.get("interfaces"))):
        parts = ln.split()
        if len(parts) != 2 or "/" not in parts[1]:
            raise Invalid(f"interfaces line {i + 1}: write 'NAME ADDRESS/NETMASK', e.g. 'eth0 192.0.2.10/24'",
                          field="interfaces")
        addr, mask = parts[1].split("/", 1)
        interfaces.setdefault(parts[0], []).append({"address": addr, "netmask": mask})
    routes = []
    for i, ln in enumerate(lines(form.get("static_routes"))):
        parts = ln.split()
        if len(parts) not in (3, 5) or parts[1] != "via" or (len(parts) == 5 and parts[3] != "dev"):
            raise Invalid(f"static_routes line {i + 1}: write 'NETWORK via GATEWAY [dev IFACE]'", field="static_routes")
        routes.append({"destination": parts[0], "gateway": parts[2], "interface": parts[4] if len(parts) == 5 else None})
    return {
        "hostname": (form.get("hostname") or "").strip(),
        "interfaces": [{"name": n, "addresses": a} for n, a in interfaces.items()],
        "default_gateway": (form.get("default_gateway") or "").strip() or None,
        "dns_servers": lines(form.get("dns_servers")),
        "ntp_servers": lines(form.get("ntp_servers")),
        "static_routes": routes,
        "snmp": {"enabled": checkbox(form, "snmp_enabled"), "version": form.get("snmp_version") or "v2c",
                 "community": form.get("snmp_community") or "", "allowed_networks": lines(form.get("snmp_allowed_networks"))},
    }


def networking_to_form(n: dict) -> dict:
    return {
        "hostname": n["hostname"],
        "interfaces": "\n".join(f"{i['name']} {a['address']}/{a['netmask']}" for i in n["interfaces"] for a in i["addresses"]),
        "default_gateway": n["default_gateway"] or "",
        "dns_servers": "\n".join(n["dns_servers"]),
        "ntp_servers": "\n".join(n["ntp_servers"]),
        "static_routes": "\n".join(f"{r['destination']} via {r['gateway']}" + (f" dev {r['interface']}" if r["interface"] else "")
                                   for r in n["static_routes"]),
        "snmp_enabled": n["snmp"]["enabled"], "snmp_version": n["snmp"]["version"],
        "snmp_community": n["snmp"]["community"], "snmp_allowed_networks": "\n".join(n["snmp"]["allowed_networks"]),
    }


def security_from_form(form) -> dict:
    ports = [p.strip() for p in (form.get("allowed_ports") or "").replace(",", " ").split() if p.strip()]
    try:
        port_numbers = [int(p) for p in ports]
    except ValueError:
        raise Invalid("administration.allowed_ports: write port numbers separated by commas",
                      field="administration.allowed_ports") from None
    return {
        "tls": {"min_version": form.get("tls_min_version"), "max_version": form.get("tls_max_version"),
                "ciphers": (form.get("tls_ciphers") or "").strip()},
        "administration": {"allowed_networks": lines(form.get("allowed_networks")), "allowed_ports": port_numbers},
        "syslog": {"enabled": checkbox(form, "syslog_enabled"), "host": (form.get("syslog_host") or "").strip() or None,
                   "port": integer(form, "syslog_port", "syslog.port"), "transport": form.get("syslog_transport"),
                   "format": form.get("syslog_format")},
        "login_agreement": {"enabled": checkbox(form, "agreement_enabled"), "title": form.get("agreement_title") or "",
                            "text": form.get("agreement_text") or ""},
        "smtp": {"host": (form.get("smtp_host") or "").strip() or None, "port": integer(form, "smtp_port", "smtp.port"),
                 "security": form.get("smtp_security"), "username": (form.get("smtp_username") or "").strip() or None,
                 "password": form.get("smtp_password") or "********",
                 "sender": (form.get("smtp_sender") or "").strip(),
                 "admin_email": (form.get("smtp_admin_email") or "").strip() or None},
    }


def security_to_form(s: dict) -> dict:
    return {
        "tls_min_version": s["tls"]["min_version"], "tls_max_version": s["tls"]["max_version"],
        "tls_ciphers": s["tls"]["ciphers"],
        "allowed_networks": "\n".join(s["administration"]["allowed_networks"]),
        "allowed_ports": ", ".join(str(p) for p in s["administration"]["allowed_ports"]),
        "syslog_enabled": s["syslog"]["enabled"], "syslog_host": s["syslog"]["host"] or "",
        "syslog_port": s["syslog"]["port"], "syslog_transport": s["syslog"]["transport"],
        "syslog_format": s["syslog"]["format"],
        "agreement_enabled": s["login_agreement"]["enabled"], "agreement_title": s["login_agreement"]["title"],
        "agreement_text": s["login_agreement"]["text"],
        "smtp_host": s["smtp"]["host"] or "", "smtp_port": s["smtp"]["port"], "smtp_security": s["smtp"]["security"],
        "smtp_username": s["smtp"]["username"] or "", "smtp_sender": s["smtp"]["sender"],
        "smtp_admin_email": s["smtp"]["admin_email"] or "", "smtp_password_set": bool(s["smtp"]["password"]),
    }


def storage_from_form(form) -> dict:
    def text(name: str) -> str | None:
        return (form.get(name) or "").strip() or None

    return {"backend": form.get("backend") or "local",
            "s3": {"endpoint_url": text("endpoint_url"), "bucket": text("bucket"), "region": text("region") or "us-east-1",
                   "prefix": text("prefix") or "", "access_key": text("access_key"),
                   "secret_key": form.get("secret_key") or "********", "verify_tls": checkbox(form, "verify_tls"),
                   "ca_pem": text("ca_pem")}}


def storage_to_form(s: dict) -> dict:
    b = s["s3"]
    return {"backend": s["backend"], "endpoint_url": b["endpoint_url"] or "", "bucket": b["bucket"] or "",
            "region": b["region"], "prefix": b["prefix"], "access_key": b["access_key"] or "",
            "secret_key_set": bool(b["secret_key"]), "verify_tls": b["verify_tls"], "ca_pem": b["ca_pem"] or ""}
