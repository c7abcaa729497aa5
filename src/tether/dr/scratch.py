"""The restore rehearsal (DR-02): a site backup restored into a scratch data
directory on this machine, a scratch appliance started from it, isolated, on
a spare loopback port, its users and settings compared with the live site,
each step timed, and the scratch appliance stopped and removed whatever
happened.

The scratch appliance is the real thing: ``tether init``, the offline
``tether restore`` and ``tether serve --isolated`` in child processes, so the
rehearsal exercises exactly what an administrator would run on a new machine.
``--isolated`` keeps it from reaching out (no syslog, outbound events or
mail, certificate reminders, support desk, failover peer); it listens only on
``127.0.0.1`` at a port the kernel picks, which no production listener holds,
and a fresh data directory has no failover pair."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx

from tether.core.errors import TetherError

from . import inventory

CLI = [sys.executable, "-c", "from tether.cli.main import app; app()"]
STEP_TIMEOUT = 300.0  # s: init, restore, start each
HEALTH_TIMEOUT = 60.0


class RehearsalFailed(TetherError):
    status, exit_code, code = 409, 9, "drill_failed"


def _run(args: list[str], env: dict, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    try:
        cp = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RehearsalFailed(f"{what} did not finish within {timeout:.0f} s") from None
    if cp.returncode != 0:
        lines = [x for x in (cp.stderr or cp.stdout).splitlines() if x.strip()]
        msg = next((x.removeprefix("Error: ") for x in lines if x.startswith("Error: ")), lines[-1] if lines else "")
        raise RehearsalFailed(f"{what} failed (exit {cp.returncode}): {msg}")
    return time.monotonic() - t0


def rehearse(live_engine, backup: Path, password: str | None, scratch: Path, *,
             host: str = "127.0.0.1", progress: Callable[[str], None] = lambda s: None) -> dict:
    """Restore ``backup`` into ``scratch`` (which must not exist), start it, compare, stop and remove it.
    Raises RehearsalFailed (with what was measured so far in ``.partial``) when a step fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_") or k == "TETHER_CLOCK_FILE"}
    if "TETHER_LOOP" in os.environ:
        env["TETHER_LOOP"] = os.environ["TETHER_LOOP"]
    timings: dict = {}
    out: dict = {"timings": timings, "scratch": {"data": str(scratch), "isolated": True}}
    data = scratch / "data"
    proc = None
    try:
        scratch.mkdir(mode=0o700, parents=True)
        progress("scratch: initialising an appliance")
        timings["init_seconds"] = round(_run(["init", "--data", str(data)], env, STEP_TIMEOUT,
                                             "initialising the scratch appliance"), 3)
        progress("scratch: restoring the backup")
        renv = {**env, **({"TETHER_BACKUP_PASSWORD": password} if password else {})}
        timings["restore_seconds"] = round(_run(["restore", str(backup), "--data", str(data)], renv, STEP_TIMEOUT,
                                                "the scratch restore"), 3)
        progress("scratch: starting the restored appliance")
        ready = scratch / "ready.json"
        t0 = time.monotonic()
        with open(scratch / "serve.log", "ab") as log:
            proc = subprocess.Popen([*CLI, "serve", "--data", str(data), "--listen", f"{host}:0", "--isolated",
                                     "--ready-file", str(ready)], stdout=log, stderr=subprocess.STDOUT, env=env)
        info = _wait_ready(proc, ready, scratch, t0)
        out["scratch"]["address"] = info["listen"][0]
        status = _wait_health(proc, info, t0)
        timings["start_seconds"] = round(time.monotonic() - t0, 3)
        timings["restore_to_answer_seconds"] = round(timings["restore_seconds"] + timings["start_seconds"], 3)
        out["scratch"]["health"] = status
        progress("scratch: comparing users and settings with the live site")
        restored_engine = inventory.read_only_sqlite(data / "site" / "site.db")
        try:
            restored = inventory.take(restored_engine)
        finally:
            restored_engine.dispose()
        out["comparison"] = inventory.compare(inventory.take(live_engine), restored)
        out["differences"] = inventory.describe(out["comparison"])
        return out
    except RehearsalFailed as exc:
        exc.partial = out
        raise
    finally:
        progress("scratch: stopping and removing the scratch appliance")
        t0 = time.monotonic()
        if proc is not None:
            _stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)
        out["scratch"]["removed"] = not scratch.exists()
        timings["cleanup_seconds"] = round(time.monotonic() - t0, 3)


def _wait_ready(proc: subprocess.Popen, ready: Path, scratch: Path, t0: float) -> dict:
    while not ready.exists():
        if proc.poll() is not None:
            tail = (scratch / "serve.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise RehearsalFailed(f"the scratch appliance exited with {proc.returncode} before it listened: "
                                  f"{tail[0][:300]}")
        if time.monotonic() - t0 > STEP_TIMEOUT:
            raise RehearsalFailed(f"the scratch appliance did not listen within {STEP_TIMEOUT:.0f} s")
        time.sleep(0.05)
    return json.loads(ready.read_text())


def _wait_health(proc: subprocess.Popen, info: dict, t0: float) -> int:
    """Until the scratch appliance's /health answers 200 (it serves the restored site), through its pinned
    built-in certificate."""
    import ssl

    ctx = ssl.create_default_context(cafile=info["builtin_cert"])
    ctx.check_hostname = False
    last = "no answer"
    deadline = time.monotonic() + HEALTH_TIMEOUT
    with httpx.Client(base_url=info["urls"][0], verify=ctx, timeout=5) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RehearsalFailed(f"the scratch appliance exited with {proc.returncode}")
            try:
                r = c.get("/health")
                if r.status_code == 200:
                    return 200
                last = f"{r.status_code} {r.text.strip()[:120]}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.05)
    raise RehearsalFailed(f"the scratch appliance did not serve its site within {HEALTH_TIMEOUT:.0f} s "
                          f"(/health: {last})")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
