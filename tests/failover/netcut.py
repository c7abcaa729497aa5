"""Cutting the link between two loopback appliances with nftables (root):
``LinkCut("127.0.0.1", "127.0.0.2")`` drops every packet between the two
addresses, both ways, until ``heal()``; the table is removed on exit.
``port=P`` narrows the cut to TCP to or from port P between them (one
pair's site port, or one connectivity test port), so other processes on
the same loopback addresses are not cut; give every concurrent cut its own
``table`` name. ``remove_tables(prefix)`` deletes whatever tables of one
run are left (an interrupted bench)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _nft(*args: str, input: str | None = None) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True, input=input)


class LinkCut:
    def __init__(self, a: str, b: str, table: str | None = None, port: int | None = None):
        self.a, self.b, self.port = a, b, port
        self.table = table or f"tether_cut_{os.getpid()}"
        self.cut_now = False

    def _rules(self) -> list[str]:
        pairs = [(self.a, self.b), (self.b, self.a)]
        if self.port is None:
            return [f"ip saddr {s} ip daddr {d} drop" for s, d in pairs]
        return [f"ip saddr {s} ip daddr {d} tcp {way} {self.port} drop" for s, d in pairs for way in ("dport", "sport")]

    def cut(self) -> None:
        body = "".join(f"  {r}\n" for r in self._rules())
        rules = (f"table inet {self.table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n"
                 f"{body} }}\n}}\n")
        _nft("-f", "-", input=rules)
        self.cut_now = True

    def heal(self) -> None:
        if self.cut_now:
            _nft("delete", "table", "inet", self.table)
            self.cut_now = False

    def __enter__(self) -> "LinkCut":
        return self

    def __exit__(self, *exc) -> None:
        self.heal()


def remove_tables(prefix: str) -> list[str]:
    """Delete every inet table whose name starts with ``prefix`` (a cleanup that does not trust the flags: an
    interrupted ``cut`` may have made its table without noting it); returns their names."""
    out = subprocess.run(["nft", "list", "tables", "inet"], capture_output=True, text=True).stdout
    gone = []
    for line in out.splitlines():
        name = line.split()[-1] if line.startswith("table inet ") else ""
        if name.startswith(prefix):
            subprocess.run(["nft", "delete", "table", "inet", name], capture_output=True)
            gone.append(name)
    return gone


def need_nft() -> None:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        if os.environ.get("CI"):
            pytest.fail("nftables is missing in CI; scripts/install-system-deps should have installed it")
        pytest.skip("needs root and nftables (scripts/install-system-deps)")
