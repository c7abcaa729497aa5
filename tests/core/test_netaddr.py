"""core/netaddr: the one writer of HOST:PORT and URLs brackets IPv6 literals."""

from tether.core import netaddr


def test_ipv6_literals_are_bracketed_once_and_names_left_alone():
    assert netaddr.host_port("::1", 8453) == "[::1]:8453"
    assert netaddr.host_port("[::1]", 8453) == "[::1]:8453"
    assert netaddr.url("https", "::1", 8453, "/appliance") == "https://[::1]:8453/appliance"
    assert netaddr.url("wss", "2001:db8::5", 443, "/client") == "wss://[2001:db8::5]:443/client"
    assert netaddr.url("https", "desk.example.com") == "https://desk.example.com"
    assert netaddr.host_port("10.0.0.6", 443) == "10.0.0.6:443"
