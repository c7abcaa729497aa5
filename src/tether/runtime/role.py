"""The appliance's role in a failover pair and its generation, and the gates
they drive (docs/formats/role.md).

    none     a standalone appliance: serves its site (if one is installed)
    primary  the serving member of a pair
    backup   the standby: follows the primary, serves no clients, takes no
             site writes

The role and a generation number (raised at every role change; it fences an
old primary) live in ``<data>/failover/role.json``, written aside, fsynced
and renamed, so a crash leaves the old or the new role, never a torn file.
Nothing else writes that file.

The gates, each asked by the one place that needs it:

- ``serving()``: ``/health`` answers 200 and the client hub admits hellos
  only when it is true (a site is installed and the role is none or primary,
  not ``suspended``: stopped by the failover monitor, or a paired primary it
  has not confirmed lately, ``fresh_until``);
- ``check_writable()``: the site's write fence (site/changelog.py calls it
  before every captured write and again at its commit) raises ``NotPrimary``
  on a backup;
- with an etcd witness (FO-11, failover/witness.py) a primary serves and
  takes writes only while ``lease_until`` (monotonic, set by the failover
  monitor from the lease it holds) is in the future; ``fencing_token``
  (the lease's revision) is kept in role.json with the role. A primary whose
  role.json names a token requires the lease from the start, before the
  monitor has read the settings;
- ``JobRunner`` reads ``current`` to decide which jobs run.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from tether.core.crashpoints import checkpoint
from tether.core.errors import Conflict, NotPrimary, TetherError
from tether.core.fsutil import write_atomic

FORMAT_VERSION = 1
ROLES = ("none", "primary", "backup")


@dataclass(frozen=True)
class RoleState:
    role: str = "none"
    generation: int = 0
    changed_at: float = 0.0
    primary: str | None = None  # where the primary is (host:port), as a backup knows it
    reason: str = ""
    fork_seq: int | None = None  # on a primary: the last entry it held when it took the role (orphans, FO-08)
    fencing_token: int | None = None  # on a primary with a witness: the revision at which it took the witness's key

    def public(self) -> dict:
        return asdict(self)


class RoleStore:
    """The durable role and generation of one appliance."""

    def __init__(self, path: Path):
        self.path = path  # DataDir.role_file
        self._lock = threading.Lock()
        self._listeners: list[Callable[[RoleState, RoleState], None]] = []
        self.state = self._load()
        self._suspended: str | None = None  # a primary cut off from everything stops serving (not a role change)
        self.fresh_until: float | None = None  # monotonic: a paired primary's monitor last confirmed it until then
        self.witness_required = self.state.fencing_token is not None  # FO-11: serve only under the lease
        self.lease_until: float | None = None  # monotonic: the witness's lease is surely held until then
        self.witness_note: str | None = None  # why the lease is not held (for refusals and status)
        self._serving_seen: bool | None = None

    def _load(self) -> RoleState:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return RoleState()
        except (OSError, ValueError) as exc:
            raise TetherError(f"{self.path} is unreadable ({exc}); the appliance's role is unknown",
                              hint="restore the file from a snapshot, or remove it to start as a standalone "
                                   "appliance (role none) and re-establish failover") from None
        if raw.get("version") != FORMAT_VERSION or raw.get("role") not in ROLES:
            raise TetherError(f"{self.path}: unknown format or role {raw.get('role')!r}",
                              hint="this file was written by other software; remove it to start as role none")
        token = raw.get("fencing_token")
        return RoleState(raw["role"], int(raw["generation"]), float(raw.get("changed_at", 0)),
                         raw.get("primary"), raw.get("reason", ""), raw.get("fork_seq"),
                         int(token) if token is not None else None)

    @property
    def current(self) -> str:
        return self.state.role

    @property
    def generation(self) -> int:
        return self.state.generation

    def subscribe(self, fn: Callable[[RoleState, RoleState], None]) -> None:
        """``fn(old, new)`` is called after every durable change."""
        self._listeners.append(fn)

    def set(self, role: str, *, generation: int | None = None, primary: str | None = None,
            reason: str = "", fork_seq: int | None = None, fencing_token: int | None = None) -> RoleState:
        """Take ``role``; the generation is raised by one unless given (it never goes down)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        with self._lock:
            old = self.state
            gen = old.generation + 1 if generation is None else generation
            if gen < old.generation:
                raise Conflict(f"generation {gen} is older than this appliance's {old.generation}")
            new = RoleState(role, gen, time.time(), primary if role == "backup" else None, reason,
                            fork_seq if role == "primary" else None, fencing_token if role == "primary" else None)
            checkpoint(f"role {role}: writing")
            self._write(new)
            self.fresh_until = None  # a confirmation is for one term
            self.lease_until = None  # so is a lease (a new primary's is given by ``hold_lease`` next)
        for fn in list(self._listeners):
            fn(old, new)
        checkpoint(f"role {role}: listeners told")
        return new

    def _write(self, new: RoleState) -> None:
        write_atomic(self.path, json.dumps({"version": FORMAT_VERSION, **new.public()}, indent=1).encode())
        self.state = new

    def hold_lease(self, until: float | None, *, token: int | None = None, note: str | None = None) -> None:
        """The failover monitor's word on the witness's lease (FO-11): surely held until ``until`` (monotonic),
        at ``token``; or not held (``until`` None), and why. A new token is written to role.json first."""
        with self._lock:
            if token is not None and self.state.role == "primary" and token != self.state.fencing_token:
                self._write(RoleState(**{**self.state.public(), "fencing_token": token}))
            self.lease_until = until
            self.witness_note = note
        self.recheck()

    def require_witness(self, required: bool) -> None:
        """Whether a primary needs the witness's lease to serve (the failover settings say so)."""
        if required != self.witness_required:
            self.witness_required = required
            if not required and self.state.fencing_token is not None and self.state.role == "primary":
                with self._lock:
                    self._write(RoleState(**{**self.state.public(), "fencing_token": None}))
            self.recheck()

    def lease_problem(self) -> str | None:
        if self.state.role != "primary" or not self.witness_required:
            return None
        if self.lease_until is not None and time.monotonic() < self.lease_until:
            return None
        return "it does not hold the witness's lease" + (f" ({self.witness_note})" if self.witness_note else "")

    def recheck(self) -> None:
        """Tell the listeners when serving changed by time alone (a lease ran out, a confirmation lapsed)."""
        now = self.serves_clients()
        if now != self._serving_seen:
            first = self._serving_seen is None
            self._serving_seen = now
            if not first:
                for fn in list(self._listeners):
                    fn(self.state, self.state)

    def reset(self) -> None:
        """Factory reset: back to a standalone appliance (the file was wiped with the data directory)."""
        self.state = self._load()

    @property
    def suspended(self) -> str | None:
        """Why this primary does not serve now, or None. Besides ``suspend``: a paired primary whose monitor has
        not confirmed it for a while (``fresh_until``; e.g. the process was frozen meanwhile: the backup may
        have taken over) serves nobody until the monitor has checked again; with a witness, the lease alone
        decides (it is kept on the monotonic clock, and no one else can take the role before it expires)."""
        if self._suspended is not None:
            return self._suspended
        lease = self.lease_problem()
        if lease is not None:
            return lease
        if (self.state.role == "primary" and not self.witness_required and self.fresh_until is not None
                and time.monotonic() > self.fresh_until):  # with a witness, the lease is the confirmation
            return "its failover monitor has not confirmed the role lately (checking its peer)"
        return None

    def suspend(self, reason: str) -> None:
        """Stop serving without giving up the role (FO-05: demote before promote); listeners are told."""
        if self._suspended is None:
            self._suspended = reason
            for fn in list(self._listeners):
                fn(self.state, self.state)

    def resume(self) -> None:
        if self._suspended is not None:
            self._suspended = None
            for fn in list(self._listeners):
                fn(self.state, self.state)

    # --- gates ------------------------------------------------------------------------------------
    def serves_clients(self) -> bool:
        return self.state.role in ("none", "primary") and self.suspended is None

    def check_writable(self) -> tuple[int, int | None]:
        """Refuse a site write unless this appliance serves its site; else the stamp its change-log entries
        carry: (generation, fencing token), the token None without a witness (FO-08, FO-11)."""
        why = self.suspended
        if why is not None:
            if self._suspended is None and self.lease_problem() is not None:
                raise NotPrimary(f"this appliance has stopped serving: {why}",
                                 hint="it serves again once it holds the witness's lease (etcd); see "
                                      "`tether failover status`")
            raise NotPrimary(f"this appliance has stopped serving: {why}",
                             hint="it serves again once it reaches its peer or a connectivity test address")
        st = self.state
        if st.role == "backup":
            where = f" ({st.primary})" if st.primary else ""
            raise NotPrimary(f"this appliance is the backup of a failover pair: make /login changes on the "
                             f"primary{where}", hint="or make this appliance primary (Management > Failover)")
        return st.generation, (st.fencing_token if self.witness_required else None)
