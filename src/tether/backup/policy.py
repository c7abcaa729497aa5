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

# ephemeral credentials: a restored site starts with nobody logged in
NEVER = {"sessions": "login sessions are never backed up",
         "api_tokens": "API bearer tokens are never backed up (API accounts are)"}


def table_class(table: sa.Table) -> str:
    if table.name in NEVER:
        return "never"
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
