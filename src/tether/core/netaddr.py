"""Addresses as text: the one place that writes a host and port into an
address or URL, so that an IPv6 literal is always bracketed (``[::1]:8453``,
``https://[::1]:8453/appliance``; RFC 3986 section 3.2.2). Parsing stays with
each caller; this module only writes."""

from __future__ import annotations


def url_host(host: str) -> str:
    """``host`` as it appears in a URL or a HOST:PORT: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def host_port(host: str, port: int | str) -> str:
    return f"{url_host(host)}:{port}"


def url(scheme: str, host: str, port: int | str | None = None, path: str = "") -> str:
    """``scheme://host[:port]path`` with the host bracketed when it is an IPv6 literal."""
    authority = url_host(host) if port is None else host_port(host, port)
    return f"{scheme}://{authority}{path}"
