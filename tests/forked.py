"""Running a piece of Tether in a forked child, for the crash tests (ROB-01):
the child may be killed (SIGKILL at a crash point, core/crashpoints.py) and the
parent reads its wait status. Shared by the sync and role-change crash tests."""

from __future__ import annotations

import os
import signal
import time
import traceback
from typing import Callable


def fork(fn: Callable, *args, timeout: float = 60.0) -> int:
    """``fn(*args)`` in a forked child; its wait status (0 when it returned, 1 when it raised: the traceback
    on stderr). A child still running after ``timeout`` is killed and TimeoutError is raised."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn(*args)
            code = 0
        except BaseException:  # noqa: BLE001 - reported on stderr, exit status 1
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            return st
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"the child ({getattr(fn, '__name__', fn)}) did not finish within {timeout:.0f} s")
        time.sleep(0.005)


def killed(st: int) -> bool:
    """The wait status of a child killed by SIGKILL (as at a crash point)."""
    return os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL
