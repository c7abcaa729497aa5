"""Syslog forwarding of audit events (APPL-03, SEC-06).

Messages are formatted as RFC 5424 (default) or RFC 3164 and sent over UDP
(one datagram each) or TCP (RFC 6587 octet counting). ``forward`` only
queues; sending is done by ``run`` (a continuous job of the appliance's job
runner) so an unreachable syslog server never slows an admin request;
failures are logged (without message contents) and dropped after a few
retries. An offline command sends what it queued at close (``flush``).
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

log = logging.getLogger("tether.syslog")

FACILITY_LOG_AUDIT = 13
SEVERITY_NOTICE = 5
APP_NAME = "tether"


@dataclass(frozen=True)
class SyslogTarget:
    host: str
    port: int
    transport: str = "udp"  # udp | tcp
    format: str = "rfc5424"  # rfc5424 | rfc3164


def format_message(target: SyslogTarget, hostname: str, msgid: str, text: str, at: float) -> bytes:
    pri = FACILITY_LOG_AUDIT * 8 + SEVERITY_NOTICE
    dt = datetime.fromtimestamp(at, tz=timezone.utc)
    if target.format == "rfc3164":
        stamp = dt.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1) if dt.day < 10 else dt.strftime("%b %d %H:%M:%S")
        return f"<{pri}>{stamp} {hostname} {APP_NAME}: {text}".encode()
    stamp = dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"<{pri}>1 {stamp} {hostname} {APP_NAME} - {msgid} - {text}".encode()


def send_once(target: SyslogTarget, payload: bytes, timeout: float = 3.0) -> None:
    if target.transport == "tcp":
        with socket.create_connection((target.host, target.port), timeout=timeout) as s:
            s.sendall(str(len(payload)).encode() + b" " + payload)
    else:
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.sendto(payload, (target.host, target.port))


class SyslogForwarder:
    """Queue of audit events to forward; ``target_fn`` reads the current setting."""

    def __init__(self, target_fn, hostname_fn, retries: int = 3):
        self._target_fn = target_fn
        self._hostname_fn = hostname_fn
        self._retries = retries
        self._queue: queue.Queue = queue.Queue(maxsize=10000)

    def forward(self, event: dict) -> None:
        target = self._target_fn()
        if target is None:
            return
        try:
            self._queue.put_nowait((target, event))
        except queue.Full:
            log.warning("syslog queue full; an audit event was not forwarded")

    def run(self, stop: threading.Event) -> None:
        """Send queued events until ``stop`` is set."""
        while not stop.is_set():
            try:
                target, event = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self._send(target, event)

    def flush(self, timeout: float = 5.0) -> None:
        """Send what is queued now (an offline command, before it exits), for at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                target, event = self._queue.get_nowait()
            except queue.Empty:
                return
            self._send(target, event)

    def _send(self, target: SyslogTarget, event: dict) -> None:
        text = json.dumps(event, sort_keys=True, separators=(",", ":"))
        payload = format_message(target, self._hostname_fn(), event.get("action", "audit"), text, event["at"])
        for attempt in range(self._retries):
            try:
                send_once(target, payload)
                return
            except OSError as exc:
                log.warning("syslog forwarding to %s:%s failed (attempt %d): %s",
                            target.host, target.port, attempt + 1, exc.__class__.__name__)
                time.sleep(0.5 * (attempt + 1))
