"""A real ``tether-desk serve`` subprocess for the tests, on free loopback
ports, mailing through a loopback SMTP sink (tests.helpers.SmtpSink), with a
logged-in staff client and seeding helpers. The ``desk_factory`` fixture
(tests/conftest.py) starts these, for the desk's own tests and for the
appliance's support link.

Every wait is bounded; every subprocess is stopped by its own handle.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import httpx

from tether.desk.auth import add_staff
from tether.desk.context import Desk, DeskConfig
from tests.helpers import SmtpSink, free_port, stop_process, wait_for

START = "2027-01-05T10:00:00-06:00"  # a Tuesday, 10:00 CST
PASSWORD = "desk-pass-1234"
WAIT = 15.0


class DeskProcess:
    """A running desk: ``api`` is a staff client, ``public`` an anonymous one."""

    def __init__(self, tmp: Path, relay: SmtpSink, extra: list[str] = (), start: str = START):
        self.tmp = tmp
        self.data = tmp / "data"
        self.clock_file = tmp / "clock"
        self.clock_file.write_text(start + "\n")
        self.relay = relay
        self.port, self.smtp_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._seed_staff()
        self.log = open(tmp / "desk.log", "ab")
        self.args = [sys.executable, "-m", "tether.desk", "serve", "--data", str(self.data),
                     "--listen", f"127.0.0.1:{self.port}", "--smtp-listen", f"127.0.0.1:{self.smtp_port}",
                     "--relay", f"127.0.0.1:{relay.port}", "--clock-file", str(self.clock_file),
                     "--jobs-interval", "0", "--mail-from", "support@desk.test", *extra]
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        self.public = httpx.Client(base_url=self.url, timeout=WAIT)
        self.api = httpx.Client(base_url=self.url, timeout=WAIT)
        try:
            self._wait_up()
            token = self.public.post("/api/login", json={"username": "alice", "password": PASSWORD}).json()["token"]
        except BaseException:
            self.stop()
            raise
        self.public.cookies.clear()
        self.api.headers["Authorization"] = f"Bearer {token}"

    def _seed_staff(self) -> None:
        """Staff accounts, written before the server starts (``tether-desk staff
        add`` itself is exercised in test_cli.py)."""
        seed = Desk(DeskConfig(data_dir=self.data))
        try:
            for name, role in (("alice", "staff"), ("erin", "engineer"), ("sam", "supervisor")):
                add_staff(seed, name, PASSWORD, email=f"{name}@vendor.test", role=role)
        finally:
            seed.close()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"desk exited: {(self.tmp / 'desk.log').read_text()}")
            try:
                if self.public.get("/api/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("desk did not come up within 30s")

    def stop(self) -> None:
        self.api.close()
        self.public.close()
        self._end()
        self.log.close()

    def _end(self) -> None:
        stop_process(self.proc)

    def down(self) -> None:
        """Stop the desk's server (its data and address are kept for ``up``): the desk is unreachable."""
        self._end()

    def up(self) -> None:
        """Start the server again on the same address and data (the staff session survives)."""
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_up()

    # -- helpers -------------------------------------------------------------
    def set_clock(self, at: str) -> None:
        self.clock_file.write_text(at + "\n")

    def token(self, name: str, customer: int, contact: str) -> str:
        """An appliance token made by ``tether-desk token create``."""
        out = subprocess.run([sys.executable, "-m", "tether.desk", "token", "create", name, "--customer",
                              str(customer), "--contact", contact, "--data", str(self.data)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def run_jobs(self) -> dict:
        r = self.api.post("/api/jobs/run")
        assert r.status_code == 200, r.text
        return r.json()

    def customer(self, name: str, reps: list[str], starts="2026-01-01", ends="2028-12-31",
                 country="US") -> dict:
        c = self.api.post("/api/customers", json={"name": name, "country": country})
        assert c.status_code == 201, c.text
        cid = c.json()["id"]
        if starts:
            r = self.api.post(f"/api/customers/{cid}/agreements", json={"starts": starts, "ends": ends})
            assert r.status_code == 201, r.text
        for email in reps:
            r = self.api.post(f"/api/customers/{cid}/representatives",
                              json={"name": email.split("@")[0].title(), "email": email})
            assert r.status_code == 201, r.text
        return self.api.get(f"/api/customers/{cid}").json()

    def open(self, email: str, **fields) -> dict:
        body = {"summary": "something broke", "inquirer_email": email, "product_version": "1.1.0", **fields}
        r = self.public.post("/api/incidents", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def incident(self, number: int) -> dict:
        r = self.api.get(f"/api/incidents/{number}")
        assert r.status_code == 200, r.text
        return r.json()

    def send_mail(self, sender: str, subject: str, body: str, files: dict[str, bytes] | None = None) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, "support@desk.test", subject
        msg.set_content(body)
        for name, data in (files or {}).items():
            msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=WAIT) as s:
            s.send_message(msg)

    def wait_incident(self, pred, timeout: float = WAIT) -> list[dict]:
        return wait_for(lambda: [r for r in self.api.get("/api/incidents").json() if pred(r)], timeout,
                        every=0.05, what="a matching incident")

    def incident_mail(self, number: int, contains: str, timeout: float = WAIT) -> EmailMessage:
        """A mail about incident ``number`` whose subject or body contains ``contains``."""
        return self.relay.wait_for(lambda m: str(m["Subject"]).strip().startswith(f"Incident #{number}:")
                                   and contains in str(m["Subject"]) + m.get_content(), timeout)
