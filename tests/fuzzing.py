"""Shared pieces of the schemathesis tests (tests/web/test_fuzz_api.py, tests/desk/test_fuzz_desk_api.py):
one bounded, derandomized run of an operation, and a one-line summary of the checks a response fails."""

from __future__ import annotations

import requests
from hypothesis import HealthCheck, Phase, given, settings


def summary(exc: BaseException) -> str:
    subs = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
    return "; ".join(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300] for e in subs)


def failure(case, response, checks) -> str | None:
    """The one-line summary of the checks ``response`` fails (schemathesis groups them), or None."""
    try:
        case.validate_response(response, checks=checks)
    except (AssertionError, BaseExceptionGroup) as exc:
        return summary(exc)
    return None


def run_operation(op, base_url: str, session: requests.Session, headers: dict, examples: int, on_response) -> None:
    """``examples`` generated calls of ``op`` (no shrinking, no example database), each handed to ``on_response``."""
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case):
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=20)
        on_response(case, response)

    run()
