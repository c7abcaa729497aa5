"""What a site backup holds and leaves out (BK-02..04).

A site table says how it is backed up through ``Table.info["backup"]``:
``"always"`` (the default), ``"history"`` (SITE-03 logged history: only with
"include logged history") or ``"never"``. The file store is limited to the
first 50 files of at most 200 KB each; recordings are never included.
"""

from __future__ import annotations

import sqlalchemy as sa

FILE_LIMIT_COUNT = 50
FILE_LIMIT_BYTES = 200 * 1024

from tether.site.locality import LOCAL_TABLES

NEVER = {k: v for k, v in LOCAL_TABLES.items() if k != "alembic_version"}
# SITE-03 logged history: only with "include logged history" (BK-03)
HISTORY = {"session_records", "session_events", "presentation_logs", "recordings", "license_usage",
           "team_activity", "exit_survey_answers"}


def table_class(table: sa.Table) -> str:
    if table.name in NEVER:
        return "never"
    if table.name in HISTORY:
        return "history"
    return table.info.get("backup", "always")


def excluded_tables(metadata: sa.MetaData, include_history: bool) -> dict[str, str]:
    """Tables whose rows are left out, with the reason."""
    out = {}
    for t in metadata.sorted_tables:
        cls = table_class(t)
        if cls == "never":
            out[t.name] = NEVER.get(t.name, "never backed up")
        elif cls == "history" and not include_history:
            out[t.name] = "logged history was not included"
    return out
