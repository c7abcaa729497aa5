"""The ``tether`` command's entry point, before anything heavy is imported:
``tether serve`` runs the appliance on jemalloc when the system has it.

Why (bench/flood.py, issue 19): after a flood of thousands of connections the
appliance's objects are freed, but CPython's small-object allocator keeps a
1 MiB arena as long as one object in it lives, and glibc's heap keeps pages
between live chunks; objects that outlive a flood (caches filled during it,
connections that stayed) pin that memory for good: RSS after a 3,000-connection
flood stayed 40% over its start. jemalloc (Debian's ``libjemalloc2``) packs
objects by size class in small pages and hands freed pages back within a
second (``MALLOC_CONF`` below); with ``PYTHONMALLOC=malloc`` every Python
object goes through it, and RSS comes back within 10%.

Both settings only work from the start of a process, so ``serve`` re-executes
itself once, at once (the same process ID, the same arguments), with
``LD_PRELOAD`` and ``PYTHONMALLOC`` set; the re-executed process takes them out
of its environment again, so the programs it starts run as usual.
``TETHER_MALLOC=system`` keeps the system allocator; without the library the
appliance runs on it too (``tether serve`` says so on its standard error)."""

from __future__ import annotations

import os
import sys

LIBRARY_PATHS = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
                 "/usr/lib64/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2")
MALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
CHOICE_ENV = "TETHER_MALLOC"  # "system": no jemalloc
_MARK = "_TETHER_MALLOC_REEXEC"  # set across the re-execution: the LD_PRELOAD to give back (maybe empty)


def jemalloc_library() -> str | None:
    return next((p for p in LIBRARY_PATHS if os.path.exists(p)), None)


def allocator() -> str:
    """The allocator this process runs on: "jemalloc" or "system"."""
    try:
        with open("/proc/self/maps") as f:
            return "jemalloc" if "libjemalloc" in f.read() else "system"
    except OSError:
        return "system"


def _serving(argv: list[str]) -> bool:
    words = [a for a in argv[1:] if not a.startswith("-")]
    return bool(words) and words[0] == "serve"


def _settle_environment() -> None:
    """In the re-executed process: the settings were for this process only."""
    before = os.environ.pop(_MARK)
    os.environ.pop("PYTHONMALLOC", None)
    if os.environ.get("MALLOC_CONF") == MALLOC_CONF:
        del os.environ["MALLOC_CONF"]
    if before:
        os.environ["LD_PRELOAD"] = before
    else:
        os.environ.pop("LD_PRELOAD", None)


def _reexec_on_jemalloc() -> None:
    if os.environ.get(CHOICE_ENV, "").lower() == "system" or "libjemalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    lib = jemalloc_library()
    if lib is None:
        print("tether serve: jemalloc (Debian's libjemalloc2) is not installed: the appliance runs on the system "
              "allocator, and memory freed after a flood of connections comes back more slowly", file=sys.stderr)
        return
    env = dict(os.environ)
    env[_MARK] = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{lib} {env[_MARK]}".strip()
    env["PYTHONMALLOC"] = "malloc"
    env.setdefault("MALLOC_CONF", MALLOC_CONF)  # an administrator's own tuning is kept
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)


def main() -> None:
    if _MARK in os.environ:
        _settle_environment()
    elif _serving(sys.argv):
        _reexec_on_jemalloc()
    from tether.cli.main import app

    app()


def __getattr__(name: str):
    """``tether.cli.entry.app``: the command tree, imported only when asked for (not before a re-execution)."""
    if name == "app":
        from tether.cli.main import app

        return app
    raise AttributeError(name)
