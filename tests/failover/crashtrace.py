"""``tether`` with a trace of every crash point it passes (ROB-01 tests):
``python tests/failover/crashtrace.py TRACE_FILE serve --data ...`` runs the
CLI as the ``tether`` script would, with ``crashpoints.observe`` appending
``N<TAB>unix time<TAB>label`` to TRACE_FILE at each point. It changes nothing
the appliance does: the crash tests trace a run with it, then kill real
``tether serve`` processes (TETHER_CRASH_AT) at the points it listed."""

import sys
import time

from tether.core import crashpoints


def main() -> None:
    trace = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115 - open for the life of the process

    def note(n: int, label: str) -> None:
        trace.write(f"{n}\t{time.time():.3f}\t{label}\n")

    crashpoints.observe(note)
    from tether.cli.main import app

    sys.argv = ["tether", *sys.argv[2:]]
    app()


if __name__ == "__main__":
    main()
