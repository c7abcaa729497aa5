"""The failover pair as the pages, the API and the CLI see it (one service,
one permission check each), and as the peer routes see it:

    establish(peer)      from the future primary: pair with the appliance at ``peer`` (FO-02, FO-10)
    break_pair()         either side: end the pair; both become standalone (FO-09)
    status()             role, generation, peer, sync position, lag, blobs pending (FO-02)
    sync_now()           the backup reconnects and rechecks every blob at once

    peer_pair / peer_unpair / peer_ack / changes / snapshot / blob_source
                         the answering side of docs/formats/peer-protocol.md

Declares what it needs of the running appliance as ``FailoverHost``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator, Iterator, Protocol

import sqlalchemy as sa
from pydantic import BaseModel

from tether.core import netaddr
from tether.core.audit import AuditLog
from tether.core.crashpoints import checkpoint
from tether.core.errors import Conflict, Forbidden, Invalid, NotFound
from tether.core.paths import DataDir
from tether.site import permissions as P
from tether.site import sections

from . import blobs, orphans, peer_auth, source, swing
from .errors import PeerError
from .pair import Pair, PairStore, new_pair
from .peer_client import PeerClient
from .roles import RoleManager
from .syncmode import SyncMode
from .worker import HEARTBEAT_SECONDS, SyncWorker

log = logging.getLogger("tether.failover")


class FailoverStatus(BaseModel):
    """``FailoverService.status_doc``: the role and the pair; with a site installed, the settings, the
    contact with the peer and the sync position (``sync``: the backup's worker, or the primary's acks)."""
    role: str
    generation: int
    paired: bool
    peer: dict[str, Any] | None
    appliance_id: str
    settings: dict[str, Any] | None = None
    psk_set: bool | None = None
    peer_contact_age_seconds: float | None = None
    serving: bool | None = None
    suspended: Any = None
    automatic_failover: dict[str, Any] | None = None
    last_swing: Any = None
    witness: dict[str, Any] | None = None
    synchronous: dict[str, Any] | None = None
    orphan_files: int | None = None
    sync: dict[str, Any] | None = None


class PairBroken(FailoverStatus):
    peer_told: bool  # false: the peer could not be told (force), break it there too


class Health(BaseModel):
    """The command API's check_health (IC-04)."""
    appliance_id: str
    hostname: str
    version: str
    success: bool
    error_message: str
    failover_role: str
    generation: int
    enabled_shared_ips: list[str]
    last_data_sync_time: float | None
    last_data_sync_status: str | None


class RolePort(Protocol):
    @property
    def current(self) -> str: ...
    @property
    def generation(self) -> int: ...
    def set(self, role: str, *, generation: int | None = None, primary: str | None = None,
            reason: str = "") -> Any: ...


class Caller(Protocol):
    """Who asks (web/auth.Principal): a name, and ``require`` raising Forbidden without the permission."""

    name: str

    def require(self, permission: str) -> None: ...


class FailoverHost(Protocol):
    data: DataDir
    audit: AuditLog
    role: RolePort
    identity: dict

    @property
    def site(self) -> Any: ...
    def pin_for(self, host: str, port: int) -> str: ...
    def status_basics(self) -> dict: ...
    def health(self) -> tuple[bool, str]: ...
    def report_incident(self, summary: str, details: str, key: str | None = None) -> None: ...
    def listen_hosts(self) -> list[str]: ...
    def first_client_since(self, since: float) -> float | None: ...
    def client_total(self) -> int: ...


def _address(text: str) -> str:
    text = (text or "").strip().removeprefix("https://").rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid(f"{text!r}: write the peer's address as HOST:PORT, e.g. 10.0.0.6:443", field="peer")
    return f"{host}:{port}"


class FailoverService:
    def __init__(self, host: FailoverHost):
        self.host = host
        self.pairs = PairStore(host.data.pair_file)
        self.limiter = peer_auth.FailureLimiter()
        self.verifier = peer_auth.PeerVerifier(self._key, limiter=self.limiter,
                                               own_id=host.identity["appliance_id"])
        self.signal = source.CommitSignal()
        self.worker = SyncWorker(lambda: self.host.site, self.client_to_peer, self.settings, self._adopt,
                                 self._keep_orphans)
        self.roles = RoleManager(self)
        self.worker.guard = self.roles.applying
        self.syncmode = SyncMode(self.settings, lambda: self.host.role.current == "primary",
                                 lambda: self.acked["through"],
                                 lambda action, details: self.host.audit.record("failover", action, None, None, details))
        host.role.subscribe(lambda old, new: self.write_track())
        if host.role.current == "primary" and self.pairs.load() is not None:
            # a paired primary that starts again may have been replaced meanwhile (FO-08): it serves nobody until
            # its monitor has heard the peer, or found it silent while a connectivity test address answers
            host.role.suspend("starting: not yet heard from the peer or reached a connectivity test address")
            self.roles.starting = time.monotonic()
        self.acked: dict = {"through": None, "at": None, "streaming": 0}
        self._keys: tuple[str, bytes] | None = None
        self.peer_holds: int | None = None  # after a term as primary: the last entry the peer surely holds
        host.role.subscribe(self._term_changed)

    # --- keepalived's track file (swing.py) ------------------------------------------------------------------
    def write_track(self, stopping: bool = False) -> None:
        """``0`` while this appliance serves as primary, else ``1``: at start, at every role or serving change,
        and ``1`` at a clean stop (``stopping``), so keepalived releases the shared address at once."""
        serving = not stopping and self.host.role.current == "primary" and self.host.role.serves_clients()
        try:
            swing.write_track(self.host.data.track_file, serving)
        except OSError as exc:
            log.error("cannot write keepalived's track file %s: %s", self.host.data.track_file, exc)

    # --- what the service reads --------------------------------------------------------------------------
    @property
    def me(self) -> str:
        return self.host.identity["appliance_id"]

    def site(self):
        site = self.host.site
        if site is None:
            raise NotFound("no site is installed on this appliance", hint="install the same site package first")
        return site

    def settings(self):
        return sections.get_model(self.site().engine, sections.section("failover"))

    def _psk(self) -> str | None:
        site = self.host.site
        if site is None:
            return None
        return sections.get_model(site.engine, sections.section("inter-appliance-psk")).psk

    def _key(self) -> bytes | None:
        psk = self._psk()
        if not psk:
            return None
        if self._keys is None or self._keys[0] != psk:
            self._keys = (psk, peer_auth.derive_key(psk))
        return self._keys[1]

    def _require_key(self) -> bytes:
        key = self._key()
        if key is None:
            raise Conflict("no inter-appliance pre-shared key is set on this appliance",
                           hint="set the same key on both appliances: /login > Management > Failover, or "
                                "PUT /api/config/settings/inter-appliance-psk")
        return key

    def client_to_peer(self, timeout: float = 10.0) -> PeerClient | None:
        pair, key = self.pairs.load(), self._key()
        if pair is None or key is None:
            return None
        return PeerClient(pair.peer_url, pair.peer_pin, key, self.me, timeout=timeout,
                          local_address=self._local_address(pair.self_url))

    def head(self) -> int:
        site = self.host.site
        return source.head_info(site.engine)[0] if site is not None else 0

    def pair_peer(self) -> str | None:
        """The peer's address while this appliance is in a pair (restores warn, FO-09)."""
        pair = self.pairs.load()
        return pair.peer_address if pair else None

    def _local_address(self, url: str) -> str | None:
        """This appliance's address in ``url`` when it listens there (the peer link leaves from it)."""
        host = url.removeprefix("https://").rsplit(":", 1)[0].strip("[]")
        return host if host in self.host.listen_hosts() and host not in ("0.0.0.0", "::") else None

    def _site_facts(self) -> dict:
        info = self.site().info()
        return {"site_name": info.name, "edition": info.edition, "product_version": info.version}

    def _adopt(self, generation: int) -> None:
        if generation > self.host.role.generation:
            pair = self.pairs.load()
            self.host.role.set("backup", generation=generation, primary=pair.peer_address if pair else None,
                               reason="a newer generation seen on the primary's stream")
            checkpoint("adopt: generation of the primary's stream")

    def _term_changed(self, old, new) -> None:
        """Leaving the primary role: note how much of this log the peer surely holds (this term's fork point, or
        what it acknowledged in this term). Taking it: acknowledgements of an earlier term no longer count."""
        if old.role == "primary" and new.role != "primary":
            self.peer_holds = max(old.fork_seq or 0, self.acked["through"] or 0)
            self.worker.fork_generation = old.generation  # an orphan file's from_generation (orphans.md)
        elif new.role == "primary" and old.role != "primary":
            self.acked.update(through=None, at=None)

    def _keep_orphans(self, fork_seq: int | None, reason: str) -> None:
        """Before this copy is replaced by the primary's: keep what the primary never received (FO-08)."""
        site = self.site()
        fork = fork_seq if fork_seq is not None else self.worker.pending_fork
        if fork is None:
            return
        if self.peer_holds is not None:
            # the new primary's fork point is its own head when it took the role; if it had not taken this
            # appliance's last term's changes by then (it had not followed it), the histories parted earlier
            fork = min(int(fork), self.peer_holds)
        st = self.host.role.state
        from_generation = self.worker.fork_generation or st.generation
        checkpoint("orphans: keeping")
        path = orphans.write(self.host.data.orphans_dir, site.engine, fork_seq=int(fork),
                             from_generation=from_generation,
                             to_generation=st.generation, site_name=site.info().name, reason=reason)
        self.worker.pending_fork = self.worker.fork_generation = None
        self.peer_holds = None
        checkpoint("orphans: kept")
        if path is not None:
            log.warning("changes the new primary never received are kept in %s", path)
            self.host.audit.record("failover", "failover.orphans", path.name, None,
                                   {"fork_seq": fork, "file": path.name,
                                    "from_generation": from_generation,
                                    "to_generation": st.generation})
            checkpoint("orphans: audited")

    # --- establish and break (the admin's side) --------------------------------------------------------------
    def establish(self, caller: Caller, peer: str, self_address: str, source_ip: str | None) -> dict:
        """Pair this appliance (it becomes primary) with the appliance at ``peer`` (it becomes backup)."""
        caller.require(P.CONFIG_WRITE)
        actor = caller.name
        peer = _address(peer)
        self_address = _address(self_address)
        key = self._require_key()
        role = self.host.role
        if role.current == "backup":
            raise Conflict("this appliance is the backup of a pair: establish failover from the primary",
                           hint="or break failover here first (tether failover break)")
        existing = self.pairs.load()
        if existing is not None and existing.peer_address != peer:
            raise Conflict(f"this appliance is already paired with {existing.peer_address}",
                           hint="break failover first (tether failover break)")
        host, port = self_address.rsplit(":", 1)
        own_pin = self.host.pin_for(host, int(port))
        facts = self._site_facts()
        body = {"appliance_id": self.me, "pin": own_pin, "url": f"https://{self_address}", "role": "primary",
                "generation": role.generation + 1, **facts}
        with PeerClient(f"https://{peer}", None, key, self.me) as client:
            answer = client.post_json("/peer/v1/pair", body, verify_response=True).json()
            presented = client.presented_pin
        if answer.get("pin") != presented:
            raise PeerError(f"the appliance at {peer} signed for certificate key {answer.get('pin')} but presented "
                            f"{presented}: something between the two appliances is intercepting their traffic",
                            hint="check the network path, then establish failover again")
        pair = new_pair(f"https://{peer}", presented, answer["appliance_id"], f"https://{self_address}", actor)
        self.pairs.save(pair)
        self._enable_operations(pair)
        new = role.set("primary", generation=max(role.generation + 1, int(answer.get("generation", 0))),
                       reason=f"established failover with {peer}")
        self.host.audit.record(actor, "failover.establish", peer, source_ip,
                               {"role": "primary", "peer_id": pair.peer_id, "peer_pin": pair.peer_pin,
                                "generation": new.generation})
        return self.status_doc()

    def break_pair(self, caller: Caller, source_ip: str | None, *, force: bool = False) -> dict:
        caller.require(P.CONFIG_WRITE)
        actor = caller.name
        pair = self.pairs.load()
        if pair is None:
            raise Conflict("this appliance is not in a failover pair")
        told = True
        key = self._key()
        try:
            if key is None:
                raise PeerError("no pre-shared key is set here")
            with PeerClient(pair.peer_url, pair.peer_pin, key, self.me) as client:
                client.post_json("/peer/v1/unpair", {"appliance_id": self.me}, verify_response=True)
        except PeerError as exc:
            if not force:
                raise Conflict(f"the peer could not be told: {exc.message}",
                               hint="repeat with --force to break the pair on this appliance alone; then break "
                                    "it on the peer too") from None
            told = False
        self._unpaired(f"failover broken by {actor}")
        self.host.audit.record(actor, "failover.break", pair.peer_address, source_ip, {"peer_told": told})
        return {**self.status_doc(), "peer_told": told}

    def _enable_operations(self, pair: Pair) -> None:
        """Both members of a pair run backup operations (either may be the backup after a failover)."""
        host, port = pair.peer_address.rsplit(":", 1)
        data = {**self.settings().model_dump(), "backup_operations_enabled": True, "enabled": True,
                "peer_host": host, "peer_port": int(port)}
        data.pop("dns_tsig_secret", None)  # omitted: kept as it is
        sections.put(self.site().engine, sections.section("failover"), data)

    def _unpaired(self, reason: str) -> None:
        self.pairs.clear()
        if self.host.role.current != "none":
            self.host.role.set("none", reason=reason)
        self.acked.update(through=None, at=None)

    def sync_now(self, caller: Caller, source_ip: str | None) -> dict:
        caller.require(P.COMMAND)
        actor = caller.name
        if self.host.role.current != "backup":
            raise Conflict("\"Sync now\" is run on the backup appliance of a pair")
        self.worker.sync_now.set()
        self.worker.blob_wake.set()
        self.host.audit.record(actor, "failover.sync_now", None, source_ip)
        return self.status_doc()

    # --- status -------------------------------------------------------------------------------------------
    def status(self, caller: Caller) -> dict:
        caller.require(P.CONFIG_READ)
        return self.status_doc()

    def status_doc(self) -> dict:
        role = self.host.role
        pair = self.pairs.load()
        out: dict = {"role": role.current, "generation": role.generation, "paired": pair is not None,
                     "peer": pair.public() if pair else None, "appliance_id": self.me}
        site = self.host.site
        if site is None:
            return out
        fs = self.settings()
        out["settings"] = {"backup_operations_enabled": fs.backup_operations_enabled, "sync_mode": fs.sync_mode,
                           "sync_commit": fs.sync_commit,
                           "sync_interval_minutes": fs.sync_interval_minutes,
                           "sync_bandwidth_limit_kbps": fs.sync_bandwidth_limit_kbps}
        out["psk_set"] = self._psk() is not None
        age = self.roles.contact_age()
        out["peer_contact_age_seconds"] = None if age is None else round(age, 3)
        out["serving"] = self.host.role.serves_clients()
        out["suspended"] = getattr(self.host.role, "suspended", None)
        out["automatic_failover"] = {"enabled": fs.automatic_failover, "primary_timeout_seconds":
                                     fs.primary_timeout_seconds, "note": self.roles.auto_note,
                                     "last_takeover": self.roles.last_takeover}
        out["last_swing"] = self.roles.last_swing
        out["witness"] = self.roles.witness.status()
        out["synchronous"] = {"mode": fs.sync_commit, "fallback": fs.sync_fallback, "timeout_ms": fs.sync_timeout_ms,
                              "degraded": self.syncmode.degraded}
        out["orphan_files"] = len(orphans.list_files(self.host.data.orphans_dir))
        if role.current == "backup":
            out["sync"] = self.worker.status.public()
        elif role.current == "primary":
            head, _at = source.head_info(site.engine)
            through, at = self.acked["through"], self.acked["at"]
            behind = head - through if through is not None else None
            lag_s = None
            if behind == 0:
                lag_s = 0.0
            elif through is not None:
                oldest = _entry_time(site.engine, through + 1)
                lag_s = round(time.time() - oldest, 3) if oldest else None
            out["sync"] = {"head": head, "backup_through": through, "lag_entries": behind, "lag_seconds": lag_s,
                           "last_ack_at": at, "streaming": self.acked["streaming"] > 0,
                           "peer_reachable": bool(at and time.time() - at < 3 * HEARTBEAT_SECONDS * 5)
                           or self.acked["streaming"] > 0}
        return out

    def check_health(self, caller: Caller) -> dict:
        """The command API's check_health (IC-04)."""
        caller.require(P.COMMAND)
        b = self.host.status_basics()
        ok, text = self.host.health()
        role = self.host.role.current
        sync = self.status_doc().get("sync") or {}
        last_time = sync.get("last_sync_at") if role == "backup" else sync.get("last_ack_at")
        last_status = sync.get("last_sync_result") if role == "backup" else (
            ("ok" if sync.get("peer_reachable") else "peer unreachable") if role == "primary" else None)
        fs = self.settings() if self.host.site is not None else None
        return {"appliance_id": b["appliance_id"], "hostname": b["hostname"], "version": b["appliance_version"],
                "success": ok or role == "backup", "error_message": "" if ok or role == "backup" else text,
                "failover_role": role, "generation": self.host.role.generation,
                "enabled_shared_ips": list(fs.shared_ips) if fs and role == "primary" else [],
                "last_data_sync_time": last_time, "last_data_sync_status": last_status}

    # --- the answering side of the peer protocol --------------------------------------------------------------
    def authenticate(self, method: str, path_qs: str, body: bytes, headers, source_ip: str | None) -> str:
        if self.roles.drill_hold == "silent":
            raise Conflict("this appliance is silent for an unplanned-failover drill", hint="tether drill show")
        try:
            return self.verifier.verify(method, path_qs, body, headers, source_ip)
        except Exception as exc:
            reason = getattr(exc, "reason", "throttled")
            log.warning("peer request %s %s from %s refused: %s", method, path_qs.split("?")[0], source_ip, reason)
            if reason in ("key", "no_key", "signature", "replay"):
                self.host.audit.record("peer", "failover.peer_refused", path_qs.split("?")[0], source_ip,
                                       {"reason": reason, "sender": headers.get(peer_auth.H_ID)})
            raise

    def sign(self, nonce: str, status: int, body: bytes) -> str:
        return peer_auth.sign_response(self._require_key(), nonce, status, body)

    def paired_with(self, sender: str) -> Pair:
        pair = self.pairs.load()
        if pair is None or pair.peer_id != sender:
            raise Forbidden("this appliance is not paired with the asking appliance")
        return pair

    def peer_pair(self, sender: str, body: dict, server: tuple[str, int], source_ip: str | None) -> dict:
        facts = self._site_facts()
        theirs = {k: body.get(k) for k in facts}
        if theirs != facts:
            raise Conflict(f"the sites differ: the primary hosts {theirs['site_name']!r} {theirs['edition']} "
                           f"{theirs['product_version']}, this appliance {facts['site_name']!r} {facts['edition']} "
                           f"{facts['product_version']}", hint="install the same site package on both appliances")
        pair = self.pairs.load()
        if pair is not None and pair.peer_id != sender:
            raise Conflict(f"this appliance is already paired with {pair.peer_address}",
                           hint="break failover on it first")
        role = self.host.role
        if role.current == "primary":
            raise Conflict("this appliance is a primary: it cannot become a backup by pairing",
                           hint="break its failover pair first")
        for k in ("url", "pin", "appliance_id"):
            if not isinstance(body.get(k), str):
                raise Invalid(f"{k}: required", field=k)
        pair = new_pair(body["url"], body["pin"], sender, netaddr.url("https", server[0], server[1]), "peer")
        self.pairs.save(pair)
        self._enable_operations(pair)
        new = role.set("backup", generation=max(role.generation + 1, int(body.get("generation", 0))),
                       primary=pair.peer_address, reason=f"paired as backup of {pair.peer_address}")
        self.host.audit.record("peer", "failover.establish", pair.peer_address, source_ip,
                               {"role": "backup", "peer_id": sender, "peer_pin": pair.peer_pin,
                                "generation": new.generation})
        return {"appliance_id": self.me, "pin": self.host.pin_for(*server), "role": "backup",
                "generation": new.generation, **facts}

    def peer_unpair(self, sender: str, source_ip: str | None) -> dict:
        pair = self.paired_with(sender)
        self._unpaired(f"failover broken by the peer {pair.peer_address}")
        self.host.audit.record("peer", "failover.break", pair.peer_address, source_ip, {"by": "peer"})
        return {"unpaired": True}

    def peer_ack(self, sender: str, body: dict) -> dict:
        self.paired_with(sender)
        through = body.get("through")
        if not isinstance(through, int) or through < 0:
            raise Invalid("through: the last applied sequence number", field="through")
        self.acked.update(through=through, at=time.time())
        self.syncmode.on_ack(through)
        return {"ok": True}

    def peer_heartbeat(self, sender: str, body: dict) -> dict:
        return self.roles.on_heartbeat(sender, body)

    def peer_demote(self, sender: str, body: dict, source_ip: str | None) -> dict:
        pair = self.paired_with(sender)
        if self.host.role.current != "primary":
            raise Conflict(f"this appliance is not primary (it is {self.host.role.current})")
        gen = body.get("generation")
        if not isinstance(gen, int):
            raise Invalid("generation: required", field="generation")
        self.roles.heard()
        answer = self.roles.step_down(gen, f"stepped down for {pair.peer_address} (planned failover)")
        self.host.audit.record("peer", "failover.become_backup", pair.peer_address, source_ip,
                               {"generation": gen, "data_sync_first": bool(body.get("data_sync_first"))})
        checkpoint("demote: audited")
        return answer

    def peer_promote(self, sender: str, body: dict, source_ip: str | None) -> dict:
        self.paired_with(sender)
        return self.roles.become_primary(_Peer(), source_ip, data_sync_first=bool(body.get("data_sync_first")),
                                         force=False)

    def become_primary(self, caller: Caller, source_ip: str | None, *, data_sync_first: bool = False,
                       force: bool = False) -> dict:
        return self.roles.become_primary(caller, source_ip, data_sync_first=data_sync_first, force=force)

    def become_backup(self, caller: Caller, source_ip: str | None, *, data_sync_first: bool = False,
                      force: bool = False) -> dict:
        return self.roles.become_backup(caller, source_ip, data_sync_first=data_sync_first, force=force)

    def set_failover_role(self, caller: Caller, source_ip: str | None, role: str, *, data_sync_first: bool = False,
                          force: bool = False) -> dict:
        """The command API's set_failover_role (IC-04)."""
        if role not in ("primary", "backup"):
            raise Invalid("role: primary or backup", field="role")
        fn = self.become_primary if role == "primary" else self.become_backup
        return fn(caller, source_ip, data_sync_first=data_sync_first, force=force)

    def orphan_files(self, caller: Caller) -> list[dict]:
        caller.require(P.CONFIG_READ)
        return orphans.list_files(self.host.data.orphans_dir)

    def orphan_file(self, caller: Caller, name: str) -> dict:
        caller.require(P.CONFIG_READ)
        if "/" in name or not name.startswith("orphans-"):
            raise Invalid("name: an orphan file name from the list", field="name")
        return orphans.read(self.host.data.orphans_dir / name)

    def apply_orphans(self, caller: Caller, entries: list[dict], source_ip: str | None) -> dict:
        """Re-apply chosen orphaned changes on this (primary) appliance as new changes."""
        caller.require(P.CONFIG_WRITE)
        from tether.site import changelog

        site = self.site()
        try:
            with site.engine.begin() as c:
                result = changelog.reapply(c, entries)
        except (ValueError, KeyError, TypeError, sa.exc.IntegrityError) as exc:
            raise Invalid(f"the entries cannot be applied (nothing was): {exc}") from None
        self.host.audit.record(caller.name, "failover.orphans.apply", None, source_ip,
                               {**result, "seqs": [e.get("seq") for e in entries][:100]})
        return result

    def _primary_site(self, sender: str):
        self.paired_with(sender)
        if self.host.role.current != "primary":
            raise Conflict(f"this appliance is not the primary (it is {self.host.role.current})")
        return self.site()

    def changes_problem(self, sender: str, after: int, after_hash: str | None) -> dict | None:
        """None when the stream continues after ``after``; else the resync message (with the fork point)."""
        site = self._primary_site(sender)
        problem = source.position_problem(site.engine, after, after_hash or None)
        if problem is None:
            return None
        st = self.host.role.state
        return {"type": "resync", "reason": problem, "fork_seq": st.fork_seq, "generation": st.generation}

    async def changes(self, sender: str, after: int) -> AsyncIterator[bytes]:
        """The change stream after ``after`` (checked by ``changes_problem``), until the role or site changes."""
        site = self._primary_site(sender)
        engine = site.engine
        self.signal.attach(engine)
        role = self.host.role
        self.acked["streaming"] += 1
        beat = 0.0
        try:
            while self.host.site is site and self.roles.drill_hold != "silent":
                seen = self.signal.count()
                batch, head = await asyncio.to_thread(source.read_batch_and_head, engine, after)
                if batch:
                    after = batch[-1]["seq"]
                    yield _line({"type": "batch", "generation": role.generation, "through": after, "head": head,
                                 "entries": batch})
                    continue
                if role.current != "primary":
                    break  # everything committed before it stepped down has been sent (planned failover)
                now = time.monotonic()
                if now - beat >= HEARTBEAT_SECONDS:
                    beat = now
                    yield _line({"type": "heartbeat", "head": after, "at": time.time(),
                                 "generation": role.generation})
                await self.signal.wait_async(seen, HEARTBEAT_SECONDS)
        finally:
            self.acked["streaming"] -= 1

    def snapshot(self, sender: str) -> Iterator[bytes]:
        site = self._primary_site(sender)
        return source.snapshot_lines(site.engine, self.host.role.generation)

    def blob_source(self, sender: str, kind: str, sha: str):
        """(the store holding blob ``sha``, its size): on local disk or in the bucket (OPS-06)."""
        blobs.check_kind(kind)
        site = self._primary_site(sender)
        store = site.files.blobs if kind == "files" else site.recordings
        size = store.size(sha)
        if size is None:
            raise NotFound(f"blob {sha} is not in this appliance's {kind}")
        return store, size


class _Peer:
    """The peer appliance as the caller of a promotion it asked for (it holds the pair's key)."""

    name = "peer"

    def require(self, permission: str) -> None:
        return None


def _line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"


def _entry_time(engine, seq: int) -> float | None:
    with engine.connect() as c:
        e = source.entry_at(c, seq)
    return e["at"] if e else None


