"""The background job runner (tether.runtime.jobs) that the expiry
reminders run on: a failing job is logged and runs again, the interval
override applies, stop() ends the waits and lets a run finish."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from tether.runtime.jobs import ENV_INTERVAL, JobRunner


def test_a_failing_job_is_logged_and_rescheduled(caplog):
    calls: list[float] = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError("relay down")

    async def main(runner: JobRunner):
        task = asyncio.create_task(runner.run())
        while len(calls) < 4:
            await asyncio.sleep(0.01)
        runner.stop()
        await asyncio.wait_for(task, 2)

    runner = JobRunner(interval_override=0.05)
    job = runner.register("flaky", 3600, flaky, first_delay=10)
    assert (job.interval, job.first_delay) == (0.05, 0.05)
    with caplog.at_level(logging.ERROR, "tether.jobs"):
        asyncio.run(main(runner))
    status = runner.status()[0]
    assert status["runs"] >= 4 and status["failures"] == 2 and status["last_error"] is None
    assert caplog.text.count("job flaky failed") == 2 and "relay down" in caplog.text


def test_stop_waits_for_the_run_in_progress():
    started, finished = threading.Event(), threading.Event()

    def slow():
        started.set()
        time.sleep(0.3)
        finished.set()

    async def main(runner: JobRunner):
        task = asyncio.create_task(runner.run())
        while not started.is_set():
            await asyncio.sleep(0.01)
        runner.stop()
        await asyncio.wait_for(task, 5)
        assert finished.is_set()

    runner = JobRunner(interval_override=None)
    runner.register("slow", 3600, slow, first_delay=0)
    asyncio.run(main(runner))


def test_interval_override_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_INTERVAL, "2.5")
    assert JobRunner().register("x", 3600, lambda: None).interval == 2.5
    monkeypatch.setenv(ENV_INTERVAL, "nonsense")
    assert JobRunner().register("x", 3600, lambda: None).interval == 3600
    monkeypatch.delenv(ENV_INTERVAL)
    runner = JobRunner()
    runner.register("x", 60, lambda: None)
    with pytest.raises(ValueError):
        runner.register("x", 60, lambda: None)
