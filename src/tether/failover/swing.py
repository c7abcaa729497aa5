"""Traffic follows the primary (FO-07). Tether decides the role; these only
carry it out, each with a real component:

- DNS swing: an RFC 2136 update of the site's A record, signed with TSIG
  (dnspython), with a prerequisite that the record still names the old
  primary, so a stale appliance can never swing it back.
- NAT swing: the administrator's hook, run as ``HOOK OLD NEW`` in a
  process group of its own, killed whole at its timeout, its output logged
  (contrib/nat-hook-nftables is a working example).
- Shared IP: keepalived holds the address and follows Tether two ways,
  both needed (docs/operations.md gives the keepalived.conf):
  the track file ``<data>/failover/track`` (``0`` while this appliance
  serves as primary, ``1`` otherwise; written at start, at every role or
  serving change and at a clean stop) read by keepalived's ``track_file``
  with weight 0, where non-zero means FAULT, so the address goes at the
  moment Tether steps down; and a ``vrrp_script``
  (contrib/keepalived/tether-check) that asks ``/health`` for
  ``200 primary ...``, because a file cannot say that its writer died: a
  killed Tether leaves ``0`` behind, and keepalived reads a missing file
  as ``0`` too.

``reachable_any`` is the connectivity test of automatic failover (FO-05).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

from tether.core.errors import TetherError
from tether.core.fsutil import write_atomic

log = logging.getLogger("tether.failover")
_track_lock = threading.Lock()  # one writer at a time: write_atomic's temporary name is fixed


def write_track(path: Path, serving_primary: bool) -> None:
    """``path``: DataDir.track_file; ``0`` (keepalived: OK) only while serving as primary, else ``1`` (FAULT)."""
    with _track_lock:
        write_atomic(path, b"0\n" if serving_primary else b"1\n", mode=0o644)


def reachable(ip: str, method: str, port: int, timeout: float = 1.0) -> bool:
    if method == "icmp":
        ping = shutil.which("ping")
        if ping is None:
            raise TetherError("the connectivity test is ICMP but `ping` is not installed",
                              hint="install iputils-ping, or set connectivity_test_method to tcp")
        return subprocess.run([ping, "-c", "1", "-W", str(max(1, int(timeout))), ip], capture_output=True,
                              timeout=timeout + 2).returncode == 0
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True  # the host answered
    except OSError:
        return False


def reachable_any(ips: list[str], method: str, port: int, timeout: float = 1.0) -> bool:
    return any(reachable(ip, method, port, timeout) for ip in ips)


def dns_update(cfg, secret: str | None, old_address: str | None, new_address: str) -> str:
    """Point ``cfg.record`` at ``new_address``; only while it still names ``old_address`` (if known)."""
    import dns.exception
    import dns.name
    import dns.query
    import dns.rcode
    import dns.tsig
    import dns.tsigkeyring
    import dns.update

    if not (cfg.server and cfg.zone and cfg.record):
        raise TetherError("DNS swing needs a server, a zone and a record", hint="set them under Failover")
    kw = {}
    if cfg.tsig_name and secret:
        kw = {"keyring": dns.tsigkeyring.from_text({cfg.tsig_name: secret}),
              "keyalgorithm": dns.name.from_text(cfg.tsig_algorithm)}
    upd = dns.update.UpdateMessage(cfg.zone, **kw)
    if old_address:
        upd.present(cfg.record, "A", old_address)
    upd.replace(cfg.record, cfg.ttl, "A", new_address)
    try:
        answer = dns.query.tcp(upd, cfg.server, port=cfg.port, timeout=5)
    except dns.tsig.PeerError as exc:
        raise TetherError(f"the DNS server {cfg.server}:{cfg.port} refused the TSIG key {cfg.tsig_name!r}: {exc}",
                          hint="check the key name, secret and algorithm against the server's key statement") from None
    except (OSError, dns.exception.DNSException) as exc:
        raise TetherError(f"the DNS server {cfg.server}:{cfg.port} could not be reached: {exc}") from None
    code = answer.rcode()
    if code != dns.rcode.NOERROR:
        raise TetherError(f"the DNS server refused the update of {cfg.record}: {dns.rcode.to_text(code)}",
                          hint="check the TSIG key and the server's update-policy; NXRRSET means the record "
                               "no longer names the old primary")
    return f"{cfg.record} A {new_address} (ttl {cfg.ttl})"


def run_hook(hook: str, old_address: str | None, new_address: str, timeout: int) -> str:
    """Run ``HOOK OLD NEW`` (OLD empty when unknown); its output (stdout then stderr) is logged and returned.
    The hook runs in a process group of its own: at the timeout the whole group is killed, so a child it
    started (an ssh to the router, a sleep) cannot outlive it or hold its output open."""
    try:
        proc = subprocess.Popen([hook, old_address or "", new_address], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    except FileNotFoundError:
        raise TetherError(f"the NAT hook {hook} does not exist",
                          hint="set nat_hook to an executable's full path") from None
    except OSError as exc:
        raise TetherError(f"the NAT hook {hook} cannot be run: {exc.strerror}",
                          hint=f"make it executable (chmod 755 {hook}) with a #! line") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # something left the group and keeps the pipes open
            out, err = "", ""
        text = (out + err).strip()
        log.error("NAT hook %s %s %s killed after %s s: %s", hook, old_address, new_address, timeout, text[:2000])
        raise TetherError(f"the NAT hook {hook} did not finish within {timeout} s and was killed",
                          hint="raise nat_hook_timeout_seconds, or make the hook fail fast") from None
    text = (out + err).strip()
    log.info("NAT hook %s %s %s exited %s: %s", hook, old_address, new_address, proc.returncode, text[:2000])
    if proc.returncode != 0:
        raise TetherError(f"the NAT hook {hook} failed (exit {proc.returncode}): {text[:500]}")
    return text


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
