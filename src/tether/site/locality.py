"""What is local to one appliance, defined once: backup (backup/policy.py),
restore (backup/restore.py), the change log (site/changelog.py) and
failover sync all read it from here.

- ``LOCAL_TABLES`` never leave the appliance: not in the change log, not
  in backups, not synced (login sessions, API tokens, the outbound-event
  delivery queue, the change log itself, sync state, Alembic's marker).
- ``PAIR_SETTINGS`` (``site_settings`` keys) belong to this appliance's
  place in a failover pair: never synced to the peer (FO-03), but carried
  by site backups and replaced by a restore (BK-08).
- ``NODE_SETTINGS`` belong to this appliance's place in an Atlas cluster:
  never synced, never replaced by a restore (BK-08, AT-04).
"""

from __future__ import annotations

LOCAL_TABLES: dict[str, str] = {
    "sessions": "login sessions are never backed up",
    "api_tokens": "API bearer tokens are never backed up (API accounts are)",
    "change_log": "the change log is local to the appliance (a restored site starts a new one)",
    "event_deliveries": "pending outbound-event deliveries are local to the appliance",
    "sync_state": "failover sync state is local to the appliance",
    "alembic_version": "the schema marker is written by migrations",
}
PAIR_SETTINGS = ("failover", "inter_appliance_psk")
NODE_SETTINGS = ("cluster",)
NOT_SYNCED_SETTINGS = PAIR_SETTINGS + NODE_SETTINGS
KEPT_BY_RESTORE = NODE_SETTINGS


def is_local_table(name: str) -> bool:
    return name in LOCAL_TABLES


def is_synced_entry(entry: dict) -> bool:
    """A change-log entry that failover sync ships to the peer."""
    if entry["tbl"] in LOCAL_TABLES:
        return False
    return not (entry["tbl"] == "site_settings" and (entry.get("key") or {}).get("key") in NOT_SYNCED_SETTINGS)
