"""The appliance's one runner for background work (STYLE 11). Every
background activity of a running appliance goes through it: syslog
forwarding, outbound-event delivery, support incidents, certificate expiry
reminders, the client hub's heartbeat sweep, and later failover sync,
scheduled backups and the peer monitor.

Three kinds of job:

- **interval**: ``fn()`` runs after ``first_delay``, then every ``interval``
  seconds. A blocking ``fn`` runs in a worker thread (SMTP or disk never
  stall the listeners); a coroutine function runs on the loop.
- **continuous**: ``fn(stop)`` runs in a worker thread until it returns or
  ``stop`` (a ``threading.Event``) is set; when it returns or fails it is
  started again after ``restart_delay``. For streams and dispatchers.
- **one-shot**: ``submit(name, fn)`` runs ``fn()`` once, as soon as
  possible, in a worker thread (e.g. opening a support incident). Its state
  stays listed until the next one of the same name.

Each job may be limited to appliance roles (``roles={"none", "primary"}``):
it runs only while ``role()`` is one of them, and a continuous job is told
to stop when the role leaves that set (``role_changed()``).

The runner owns the per-job state (runs, failures, last start and end,
next run, last error, running), logging and rescheduling: an exception is
logged with its traceback and the job runs again later; it never stops the
runner or the appliance. ``stop()`` ends the waits at once, sets every
continuous job's stop event and lets runs in progress finish.

Jobs may be registered before or while the runner runs.

``TETHER_JOB_INTERVAL`` (seconds, > 0) overrides every interval job's
interval and first delay: for tests and drills, not for production.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel

log = logging.getLogger("tether.jobs")

ENV_INTERVAL = "TETHER_JOB_INTERVAL"
ALL_ROLES = frozenset({"none", "primary", "backup"})


class JobStatus(BaseModel):
    """One background job as ``Job.public`` reports it."""
    name: str
    kind: str
    interval_seconds: float | None
    roles: list[str]
    runs: int
    failures: int
    last_started: float | None
    last_finished: float | None
    next_run: float | None
    last_error: str | None
    running: bool


@dataclass
class Job:
    name: str
    kind: str  # interval | continuous | one-shot
    fn: Callable[..., Any]
    interval: float = 0.0
    first_delay: float = 0.0
    roles: frozenset[str] = ALL_ROLES
    runs: int = 0
    failures: int = 0
    last_started: float | None = None
    last_finished: float | None = None
    next_run: float | None = None
    last_error: str | None = None
    running: bool = field(default=False)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict:
        return {"name": self.name, "kind": self.kind, "interval_seconds": self.interval or None,
                "roles": sorted(self.roles), "runs": self.runs, "failures": self.failures,
                "last_started": self.last_started, "last_finished": self.last_finished, "next_run": self.next_run,
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
    def __init__(self, interval_override: float | None = None, role: Callable[[], str] = lambda: "none"):
        self.override = interval_override if interval_override is not None else _override()
        self.role = role
        self.jobs: dict[str, Job] = {}
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._role_changed: asyncio.Event | None = None
        # the runner's own threads: continuous jobs hold one each for as long as they run, so they must
        # never starve the event loop's default executor (which the web layer and the hub use)
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="tether-job")

    # --- registering ------------------------------------------------------------------------------
    def register(self, name: str, interval: float, fn: Callable[[], Any], *, first_delay: float = 0.0,
                 roles: set[str] | frozenset[str] = ALL_ROLES, exact: bool = False) -> Job:
        """An interval job (``exact``: housekeeping whose interval the override must not change)."""
        if interval <= 0:
            raise ValueError("a job's interval must be positive")
        if self.override is not None and not exact:
            interval, first_delay = self.override, min(first_delay, self.override)
        return self._add(Job(name, "interval", fn, float(interval), float(first_delay), frozenset(roles)))

    def continuous(self, name: str, fn: Callable[[threading.Event], Any], *, restart_delay: float = 1.0,
                   roles: set[str] | frozenset[str] = ALL_ROLES) -> Job:
        """A job that runs until told to stop, restarted ``restart_delay`` seconds after it ends."""
        return self._add(Job(name, "continuous", fn, float(restart_delay), 0.0, frozenset(roles)))

    def submit(self, name: str, fn: Callable[[], Any]) -> Job:
        """Run ``fn()`` once, soon, in a worker thread; without a running runner, in a thread of its own."""
        old = self.jobs.get(name)
        if old is not None and old.kind == "one-shot" and not old.running:
            del self.jobs[name]
        elif old is not None:
            name = f"{name}#{int(time.time() * 1000)}"
        job = Job(name, "one-shot", fn)
        self.jobs[name] = job
        if self._loop is None or self._stop is None or self._stop.is_set():
            threading.Thread(target=self._call, args=(job,), name=f"job-{name}", daemon=True).start()
        else:
            self._loop.call_soon_threadsafe(self._spawn, job)
        return job

    def unregister(self, name: str) -> None:
        job = self.jobs.pop(name, None)
        if job is not None:
            job.stop_event.set()

    def _add(self, job: Job) -> Job:
        if job.name in self.jobs:
            raise ValueError(f"job {job.name!r} is already registered")
        self.jobs[job.name] = job
        if self._loop is not None and self._stop is not None and not self._stop.is_set():
            self._loop.call_soon_threadsafe(self._spawn, job)
        return job

    def status(self) -> list[dict]:
        return [j.public() for j in self.jobs.values()]

    # --- running ------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run every job until ``stop()``; returns when runs in progress have finished."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._role_changed = asyncio.Event()
        for job in list(self.jobs.values()):
            self._spawn(job)
        await self._stop.wait()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._threads.shutdown(wait=False)

    def stop(self) -> None:
        for job in self.jobs.values():
            job.stop_event.set()
        if self._stop is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def role_changed(self) -> None:
        """The appliance's role changed: continuous jobs outside their roles are told to stop."""
        role = self.role()
        for job in self.jobs.values():
            if job.kind == "continuous" and role not in job.roles:
                job.stop_event.set()
        if self._loop is not None and self._role_changed is not None:
            self._loop.call_soon_threadsafe(self._role_changed.set)

    def _spawn(self, job: Job) -> None:
        loop = {"interval": self._interval_loop, "continuous": self._continuous_loop, "one-shot": self._once}[job.kind]
        task = asyncio.get_running_loop().create_task(loop(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait(self, job: Job, delay: float) -> bool:
        """Wait ``delay`` seconds; False when the runner stops or the job was unregistered meanwhile."""
        assert self._stop is not None
        job.next_run = time.time() + delay
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
            return False
        except asyncio.TimeoutError:
            return self.jobs.get(job.name) is job

    async def _interval_loop(self, job: Job) -> None:
        delay = job.first_delay
        while await self._wait(job, delay):
            delay = job.interval
            if self.role() in job.roles:
                await self.run_once(job)
        job.next_run = None

    async def _continuous_loop(self, job: Job) -> None:
        assert self._stop is not None and self._role_changed is not None
        while not self._stop.is_set() and self.jobs.get(job.name) is job:
            if self.role() not in job.roles:
                job.next_run = None
                self._role_changed.clear()
                try:
                    await asyncio.wait_for(self._role_changed.wait(), timeout=1.0)
                except asyncio.TimeoutError:
                    pass
                continue
            job.stop_event.clear()
            if self._stop.is_set():
                break
            await self.run_once(job, job.stop_event)
            if not await self._wait(job, job.interval):
                break
        job.next_run = None

    async def _once(self, job: Job) -> None:
        await self.run_once(job)

    async def run_once(self, job: Job, *args) -> None:
        if inspect.iscoroutinefunction(job.fn):
            self._begin(job)
            try:
                await job.fn(*args)
                job.last_error = None
            except Exception as exc:  # noqa: BLE001 - a job's failure must never stop the runner
                self._failed(job, exc)
            finally:
                job.running, job.last_finished = False, time.time()
        else:
            await asyncio.get_running_loop().run_in_executor(self._threads, self._call, job, *args)

    def _begin(self, job: Job) -> None:
        job.running, job.last_started, job.next_run = True, time.time(), None
        job.runs += 1

    def _failed(self, job: Job, exc: Exception) -> None:
        job.failures += 1
        job.last_error = f"{type(exc).__name__}: {exc}"[:500]
        log.exception("job %s failed (run %d); it runs again in %.0f s", job.name, job.runs, job.interval)

    def _call(self, job: Job, *args) -> None:
        self._begin(job)
        try:
            job.fn(*args)
            job.last_error = None
        except Exception as exc:  # noqa: BLE001
            self._failed(job, exc)
        finally:
            job.running, job.last_finished = False, time.time()
