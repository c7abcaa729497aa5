"""The appliance's one runner for background jobs (STYLE 11): certificate
expiry reminders now; scheduled backups, sync and the like later register
here too instead of growing their own loops.

A job is a name, an interval in seconds and a plain blocking function. The
runner lives in the server's event loop: each job waits its interval, then
its function runs in a worker thread (so SMTP or disk never stalls the
listeners). The runner owns the per-job state (runs, failures, last start,
end, result), logging, and rescheduling: an exception is logged with its
traceback and the job simply runs again after its interval; it never stops
the runner or the appliance. ``stop()`` ends the waits at once and lets a
run in progress finish, so the appliance closes its database after the
last job is done.

``TETHER_JOB_INTERVAL`` (seconds, > 0) overrides every job's interval and
first delay: for tests and drills, not for production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("tether.jobs")

ENV_INTERVAL = "TETHER_JOB_INTERVAL"
CERT_EXPIRY_INTERVAL = 3600.0
CERT_EXPIRY_FIRST_DELAY = 10.0


@dataclass
class Job:
    name: str
    interval: float
    fn: Callable[[], Any]
    first_delay: float = 0.0
    runs: int = 0
    failures: int = 0
    last_started: float | None = None
    last_finished: float | None = None
    last_error: str | None = None
    running: bool = field(default=False)

    def public(self) -> dict:
        return {"name": self.name, "interval_seconds": self.interval, "runs": self.runs, "failures": self.failures,
                "last_started": self.last_started, "last_finished": self.last_finished,
                "last_error": self.last_error, "running": self.running}


def _override() -> float | None:
    raw = os.environ.get(ENV_INTERVAL)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        log.warning("%s=%r is not a positive number of seconds; ignored", ENV_INTERVAL, raw)
        return None
    return value


class JobRunner:
    def __init__(self, interval_override: float | None = None):
        self.override = interval_override if interval_override is not None else _override()
        self.jobs: dict[str, Job] = {}
        self._stop: asyncio.Event | None = None

    def register(self, name: str, interval: float, fn: Callable[[], Any], *, first_delay: float = 0.0) -> Job:
        if name in self.jobs:
            raise ValueError(f"job {name!r} is already registered")
        if interval <= 0:
            raise ValueError("a job's interval must be positive")
        if self.override is not None:
            interval, first_delay = self.override, min(first_delay, self.override)
        job = self.jobs[name] = Job(name, float(interval), fn, float(first_delay))
        return job

    def status(self) -> list[dict]:
        return [j.public() for j in self.jobs.values()]

    async def run(self) -> None:
        """Run every job until ``stop()``; returns when runs in progress have finished."""
        self._stop = asyncio.Event()
        await asyncio.gather(*(self._loop(job) for job in self.jobs.values()))

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _loop(self, job: Job) -> None:
        assert self._stop is not None
        delay = job.first_delay
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
                return
            except asyncio.TimeoutError:
                pass
            await self.run_once(job)
            delay = job.interval

    async def run_once(self, job: Job) -> None:
        job.running, job.last_started = True, time.time()
        job.runs += 1
        try:
            await asyncio.to_thread(job.fn)
            job.last_error = None
        except Exception as exc:  # noqa: BLE001 - a job's failure must never stop the runner
            job.failures += 1
            job.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("job %s failed (run %d); it runs again in %.0f s", job.name, job.runs, job.interval)
        finally:
            job.running, job.last_finished = False, time.time()


def appliance_jobs(appliance) -> JobRunner:
    """The runner with every job of a running appliance (``tether.runtime.Appliance``)."""
    runner = JobRunner()
    runner.register("certificate-expiry-reminders", CERT_EXPIRY_INTERVAL, appliance.send_certificate_reminders,
                    first_delay=CERT_EXPIRY_FIRST_DELAY)
    return runner
