"""The readiness audit (DR-01): the appliance checks itself against every
preparation the disaster-recovery manual asks for, and says what is missing.

``checks`` holds one function per named check; each reads real state (the
audit logs of both faces, the certificate store and its assignments, the
failover status, the job runner, the password hashes) and answers pass,
warn or fail, each failure with the exact command or page that mends it.
``run`` runs them all (``report``: the document the CLI, the API, the
/appliance Status > Readiness page, the dashboards and /metrics show).
``copies`` records the one fact no other action leaves behind: that the
administrator holds the installed site package and the vendor key off the
appliance (they present them, the appliance compares them).
"""

from .checks import CHECKS, Check, ReadinessHost, Report, run

__all__ = ["CHECKS", "Check", "ReadinessHost", "Report", "run"]
