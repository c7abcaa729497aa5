"""The etcd witness of a failover pair (FO-11): one key per site, held under
an etcd lease by the primary, so that two appliances cut apart can never
both serve (docs/formats/witness.md).

What this module owns: talking to etcd's v3 HTTP/JSON gateway (``/v3/...``,
etcd 3.4's ``grpc-gateway``; keys and values base64) through httpx, and the
local arithmetic of how long a lease is surely held. It writes no consensus
of its own: etcd (a three-member cluster) decides who holds the key.

    acquire(generation)  grant (or keep alive) our lease, then one txn: put the key with our lease
                         only if it is absent (create_revision 0); if it names this appliance under
                         an older lease of ours, take it over by compare-and-swap on its mod revision.
                         Raises WitnessHeld naming the holder otherwise.
    renew()              keep the lease alive and check the key is still on it
    release()            revoke the lease (the key goes with it); best effort
    holder()             who holds the key now (a linearizable range), or None

``valid_until`` (time.monotonic) is the moment the grant or keepalive
request was SENT plus the TTL etcd granted minus a safety margin: etcd
starts counting the TTL when it receives the request, later than we sent
it, so the server's expiry is never before ours plus the margin. The
fencing token is the revision at which this appliance put the key (the
txn's header revision): it grows with every new holder.

Endpoints are tried in order, starting with the last one that answered; a
member without a quorum answers nothing useful in time and the next is
tried. What the primary does with all this (serve only while
``valid_until`` is ahead) is roles.py's and runtime/role.py's business.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import httpx

from .errors import WitnessError, WitnessHeld, WitnessUnavailable

FORMAT_VERSION = 1
DERIVED_TTL = (2, 30)  # without a set TTL: the primary timeout, within these bounds


def derived_ttl(ttl_seconds: int, primary_timeout: float) -> int:
    if ttl_seconds:
        return int(ttl_seconds)
    return int(max(DERIVED_TTL[0], min(DERIVED_TTL[1], primary_timeout)))


def derived_margin(margin_seconds: float, ttl: int) -> float:
    return float(margin_seconds) if margin_seconds else max(1.0, ttl / 4)


def default_key(site_name: str) -> str:
    return f"/tether/{site_name}/primary"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Holder:
    """Who holds the key: what it wrote (docs/formats/witness.md) and etcd's revisions."""

    appliance_id: str | None
    address: str | None
    generation: int | None
    lease: int
    token: int  # the key's mod revision: the holder's fencing token
    create_revision: int

    def public(self) -> dict:
        return {**asdict(self), "lease": f"{self.lease:x}"}


def _holder(kv: dict) -> Holder:
    try:
        value = json.loads(base64.b64decode(kv.get("value") or ""))
        if not isinstance(value, dict):
            value = {}
    except ValueError:
        value = {}
    gen = value.get("generation")
    return Holder(value.get("appliance_id"), value.get("address"), gen if isinstance(gen, int) else None,
                  int(kv.get("lease") or 0), int(kv.get("mod_revision") or 0), int(kv.get("create_revision") or 0))


class _Refused(Exception):
    """etcd answered, and said no (e.g. the lease is not found): no point asking another member."""


class EtcdWitness:
    def __init__(self, endpoints: list[str], key: str, appliance_id: str, address: str | None, *, ttl: int,
                 margin: float, timeout: float | None = None, verify: str | bool = True,
                 local_address: str | None = None, clock: Callable[[], float] = time.monotonic):
        if not endpoints:
            raise ValueError("a witness needs at least one endpoint")
        if margin * 2 > ttl:
            raise ValueError("the safety margin must be at most half the lease TTL")
        self.endpoints = list(endpoints)
        self.key = key
        self.appliance_id = appliance_id
        self.address = address
        self.ttl = int(ttl)
        self.margin = float(margin)
        self.timeout = timeout if timeout is not None else min(2.0, max(0.5, ttl / 4))
        self.clock = clock
        self.lease: int | None = None
        self.token: int | None = None
        self.valid_until: float | None = None  # monotonic
        self.last_error: str | None = None
        self.last_holder: Holder | None = None
        self._good = 0
        self._lock = threading.Lock()
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        transport = httpx.HTTPTransport(local_address=local_address, verify=verify, retries=0)
        self._http = httpx.Client(transport=transport, timeout=self.timeout)

    def close(self) -> None:
        self._http.close()

    # --- the gateway ---------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> dict:
        problems = []
        n = len(self.endpoints)
        for i in range(n):
            k = (self._good + i) % n
            url = self.endpoints[k]
            try:
                r = self._http.post(url + path, json=body)
            except httpx.HTTPError as exc:
                problems.append(f"{url}: {type(exc).__name__}")
                continue
            try:
                doc = r.json()
            except ValueError:
                problems.append(f"{url}: HTTP {r.status_code}, not JSON")
                continue
            if r.status_code == 200 and "error" not in doc:
                self._good = k
                return doc
            message = str((doc.get("error") or {}).get("message") if isinstance(doc.get("error"), dict)
                          else doc.get("message") or doc.get("error") or f"HTTP {r.status_code}")
            if "lease not found" in message:
                self._good = k
                raise _Refused(message)
            problems.append(f"{url}: {message}")  # no leader, timed out, ...: another member may do better
        raise WitnessUnavailable("no etcd witness endpoint answered with a quorum: " + "; ".join(problems),
                                 hint="check the etcd members (etcdctl endpoint health) and the network to them")

    def _grant(self) -> tuple[float, int]:
        sent = self.clock()
        doc = self._post("/v3/lease/grant", {"TTL": self.ttl})
        self.lease = int(doc["ID"])
        return sent, int(doc.get("TTL") or 0)

    def _keepalive(self) -> tuple[float, int]:
        """(sent, ttl): ttl 0 when the lease is gone (expired or revoked)."""
        sent = self.clock()
        try:
            doc = self._post("/v3/lease/keepalive", {"ID": str(self.lease)})
        except _Refused:
            return sent, 0
        return sent, int((doc.get("result") or doc).get("TTL") or 0)

    def _valid(self, sent: float, ttl: int) -> float:
        return sent + min(ttl, self.ttl) - self.margin

    def _range(self) -> dict | None:
        doc = self._post("/v3/kv/range", {"key": _b64(self.key)})
        kvs = doc.get("kvs") or []
        return kvs[0] if kvs else None

    def _value(self, generation: int) -> str:
        return _b64(json.dumps({"version": FORMAT_VERSION, "appliance_id": self.appliance_id,
                                "address": self.address, "generation": generation, "at": time.time()},
                               separators=(",", ":")))

    # --- what the role manager calls ------------------------------------------------------------------------
    def acquire(self, generation: int) -> int:
        """Hold the key under our lease; returns the fencing token. Raises WitnessHeld or WitnessUnavailable."""
        with self._lock:
            try:
                return self._acquire(generation)
            except WitnessError as exc:
                self.last_error = exc.message
                raise

    def _acquire(self, generation: int) -> int:
        sent, ttl = (self._keepalive() if self.lease is not None else (0.0, 0))
        try:
            if ttl <= 0:
                self.valid_until = self.token = None
                sent, ttl = self._grant()
            if ttl <= 0:
                raise WitnessUnavailable("the etcd witness granted no lease")
            key = _b64(self.key)
            put = {"request_put": {"key": key, "value": self._value(generation), "lease": str(self.lease)}}
            doc = self._post("/v3/kv/txn", {"compare": [{"key": key, "target": "CREATE", "result": "EQUAL",
                                                          "create_revision": "0"}],
                                            "success": [put], "failure": [{"request_range": {"key": key}}]})
            if not doc.get("succeeded"):
                kvs = ((doc.get("responses") or [{}])[0].get("response_range") or {}).get("kvs") or []
                if not kvs:  # gone between the compare and now: try once more next time
                    raise WitnessUnavailable("the witness's key changed while this appliance took it; retrying")
                held = _holder(kvs[0])
                self.last_holder = held
                if held.lease == self.lease:
                    self.token = held.token
                elif held.appliance_id == self.appliance_id:
                    # this appliance's key under an older lease of its own (before a restart): take it over
                    doc = self._post("/v3/kv/txn", {
                        "compare": [{"key": key, "target": "MOD", "result": "EQUAL",
                                     "mod_revision": str(held.token)}],
                        "success": [put], "failure": []})
                    if not doc.get("succeeded"):
                        raise WitnessUnavailable("the witness's key changed while this appliance took it; retrying")
                    self.token = int(doc["header"]["revision"])
                else:
                    self.valid_until = None
                    self.token = None
                    raise WitnessHeld(f"the witness's key {self.key} is held by {held.appliance_id} "
                                      f"({held.address}, generation {held.generation}, token {held.token})",
                                      holder=held.public(),
                                      hint="it is primary for as long as it renews its lease; if it is really "
                                           "gone, the key is free once its lease expires (at most the TTL)")
            else:
                self.token = int(doc["header"]["revision"])
        except _Refused as exc:  # our new lease vanished already: not held
            self.lease = self.valid_until = self.token = None
            raise WitnessUnavailable(f"the etcd witness lost this appliance's lease: {exc}") from None
        self.valid_until = self._valid(sent, ttl)
        self.last_error = None
        self.last_holder = None
        return self.token

    def renew(self) -> float:
        """Keep the lease alive; returns the new ``valid_until``. Raises WitnessError when it is not held."""
        with self._lock:
            if self.lease is None or self.token is None:
                raise WitnessError("this appliance does not hold the witness's key")
            try:
                sent, ttl = self._keepalive()
                if ttl <= 0:
                    self.lease = self.valid_until = self.token = None
                    raise WitnessError("the witness's lease expired (not renewed in time)")
                kv = self._range()
                if kv is None or int(kv.get("lease") or 0) != self.lease:
                    self.valid_until = self.token = None
                    self.last_holder = _holder(kv) if kv else None
                    raise WitnessError("the witness's key is no longer on this appliance's lease")
            except WitnessError as exc:
                self.last_error = exc.message
                raise
            self.valid_until = self._valid(sent, ttl)
            self.last_error = None
            return self.valid_until

    def release(self) -> None:
        with self._lock:
            lease, self.lease, self.valid_until, self.token = self.lease, None, None, None
            if lease is None:
                return
            try:
                self._post("/v3/lease/revoke", {"ID": str(lease)})
            except (WitnessError, _Refused):
                pass  # it expires by itself within the TTL

    def holder(self) -> Holder | None:
        kv = self._range()
        return _holder(kv) if kv else None

    def holds(self) -> bool:
        return self.valid_until is not None and self.clock() < self.valid_until

    def public(self) -> dict:
        left = None if self.valid_until is None else max(0.0, self.valid_until - self.clock())
        return {"endpoints": self.endpoints, "key": self.key, "lease_ttl_seconds": self.ttl,
                "margin_seconds": self.margin, "held": self.holds(), "token": self.token,
                "lease": f"{self.lease:x}" if self.lease is not None else None,
                "valid_for_seconds": None if left is None else round(left, 3), "last_error": self.last_error,
                "holder": self.last_holder.public() if self.last_holder else None}
