"""The job runner's continuous and one-shot jobs and its role gating: a
job limited to serving roles does not run on a backup, a continuous job is
told to stop when the role leaves its set and starts again when it comes
back; jobs registered while the runner runs start at once."""

from __future__ import annotations

import asyncio
import threading
import time

from tether.runtime.jobs import JobRunner


def test_role_gated_continuous_and_interval_jobs():
    role = ["backup"]
    ticks: list[str] = []
    runs = {"stream": 0}
    ran_once = threading.Event()

    def stream(stop: threading.Event):
        runs["stream"] += 1
        while not stop.wait(0.01):
            ticks.append(role[0])

    async def main(runner: JobRunner):
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.3)
        assert ticks == [] and runs["stream"] == 0  # a backup runs neither
        role[0] = "primary"
        runner.role_changed()
        await asyncio.sleep(0.4)
        assert runs["stream"] == 1 and ticks
        role[0] = "backup"
        runner.role_changed()
        await asyncio.sleep(0.2)
        n = len(ticks)
        await asyncio.sleep(0.2)
        assert len(ticks) == n, "the continuous job stopped when the role left its set"
        status = {s["name"]: s for s in runner.status()}
        assert status["stream"]["running"] is False and status["stream"]["kind"] == "continuous"
        runner.submit("once", ran_once.set)  # one-shot while running
        late = runner.register("late", 0.05, lambda: None)  # registered while running: starts at once
        await asyncio.sleep(0.3)
        assert late.runs >= 2
        runner.stop()
        await asyncio.wait_for(task, 5)

    runner = JobRunner(interval_override=None, role=lambda: role[0])
    runner.continuous("stream", stream, restart_delay=0.05, roles={"none", "primary"})
    interval = runner.register("serving-only", 0.05, lambda: None, roles={"none", "primary"})
    asyncio.run(main(runner))
    assert ran_once.is_set()
    assert interval.runs >= 1
    assert runner.jobs["serving-only"].public()["next_run"] is None  # stopped: nothing scheduled


def test_a_failing_continuous_job_is_restarted_with_its_error_visible():
    calls: list[float] = []

    def flaky(stop):
        calls.append(time.monotonic())
        raise RuntimeError("peer unreachable")

    async def main(runner: JobRunner):
        task = asyncio.create_task(runner.run())
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        runner.stop()
        await asyncio.wait_for(task, 5)

    runner = JobRunner(interval_override=None)
    job = runner.continuous("flaky", flaky, restart_delay=0.02)
    asyncio.run(main(runner))
    assert job.failures >= 3 and job.last_error == "RuntimeError: peer unreachable"
