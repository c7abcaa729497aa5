"""Labels written for people, from the field and column names of the documents the pages show: the one
place the HTML faces turn ``tls_mode`` into "TLS mode", ``bind_dn`` into "Bind DN", ``os`` into "OS",
``public_ip`` into "Public IP" and ``pre_shared_key`` into "Pre-shared key" (table headers and form labels
alike, in one style: the first letter up, acronyms in capitals)."""

from __future__ import annotations

ACRONYMS = frozenset({
    "api", "ca", "cpu", "csr", "dn", "dns", "fqdn", "http", "https", "id", "ip", "ips", "kdc", "ldap", "lsid",
    "mfa", "ntp", "os", "otp", "psk", "rdp", "sha256", "smtp", "snmp", "ssh", "sso", "tcp", "tls", "tsig",
    "ttl", "udp", "uri", "url", "urls", "utc", "vnc"})
NAMES = {"psk": "Pre-shared key", "sha256": "SHA-256"}  # whole names said otherwise
PHRASES = {"pre shared": "pre-shared", "e mail": "e-mail", "two factor": "two-factor"}


def label(name: str) -> str:
    if name in NAMES:
        return NAMES[name]
    words = [w for w in name.replace("-", "_").split("_") if w]
    text = " ".join(w.upper() if w.lower() in ACRONYMS else w.lower() for w in words)
    for a, b in PHRASES.items():
        text = text.replace(a, b).replace(a.upper(), b)
    text = text.replace("IPS", "IPs").replace("URLS", "URLs")
    return text[:1].upper() + text[1:]
