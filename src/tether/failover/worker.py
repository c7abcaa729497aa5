"""The backup's two sync jobs, continuous jobs of the appliance's job
runner that run only while the role is ``backup``:

- ``follow`` keeps one long-lived change stream from the primary open
  (``GET /peer/v1/changes``), applies each batch in one transaction,
  acknowledges it (``POST /peer/v1/ack``), and on ``resync`` takes a full
  copy (``GET /peer/v1/snapshot``). In ``interval`` mode it disconnects once
  caught up and comes back after the interval (or at "Sync now").
- ``fetch_blobs`` fetches every blob the site refers to and does not hold
  (resumable, verified: failover/blobs.py).

Both read through one bandwidth limit. ``SyncStatus`` is what they report
(status page, API, CLI; later the readiness audit and metrics).
"""

from __future__ import annotations

import logging
import math
import queue
import socket
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, ContextManager

from tether.core.errors import TetherError

from . import blobs, sink
from .bandwidth import Bandwidth
from .errors import PeerError, StreamError
from .peer_client import PeerClient

log = logging.getLogger("tether.failover")
_END = object()  # the stream ended

HEARTBEAT_SECONDS = 1.0
QUEUE_LINES = 64  # stream messages read ahead of the applier
GROUP_ENTRIES = 5000  # at most this many entries applied in one transaction
READ_TIMEOUT = 10 * HEARTBEAT_SECONDS  # a stream silent this long is dead
RETRY_SECONDS = 1.0
BLOB_RESCAN_SECONDS = 60.0


@dataclass
class SyncStatus:
    connected: bool = False
    last_heard: float | None = None
    last_sync_at: float | None = None
    last_result: str = "not started"
    last_error: str | None = None
    applied_seq: int = 0
    primary_head: int = 0
    caught_up_at: float | None = None
    full_syncs: int = 0
    entries_applied: int = 0
    bytes_received: int = 0
    blobs_pending: int = 0
    blob_bytes_pending: int = 0
    blobs_fetched: int = 0
    blob_bytes_received: int = 0  # blob bytes read from the primary (``bytes_received``: the streams)
    blob_bytes_resumed: int = 0  # bytes of broken transfers kept in their part files and not fetched again
    blob_error: str | None = None
    delays_ms: deque = field(default_factory=lambda: deque(maxlen=2000))

    def public(self) -> dict:
        now = time.time()
        behind = max(0, self.primary_head - self.applied_seq)
        lag_s = 0.0 if behind == 0 else (now - self.caught_up_at if self.caught_up_at else None)
        d = sorted(self.delays_ms)
        return {"connected": self.connected,
                "peer_reachable": bool(self.last_heard and now - self.last_heard < 3 * HEARTBEAT_SECONDS),
                "last_sync_at": self.last_sync_at, "last_sync_result": self.last_result,
                "last_error": self.last_error, "applied_seq": self.applied_seq, "primary_head": self.primary_head,
                "lag_entries": behind, "lag_seconds": None if lag_s is None else round(lag_s, 3),
                "full_syncs": self.full_syncs, "entries_applied": self.entries_applied,
                "bytes_received": self.bytes_received, "blobs_pending": self.blobs_pending,
                "blob_bytes_pending": self.blob_bytes_pending, "blobs_fetched": self.blobs_fetched,
                "blob_bytes_received": self.blob_bytes_received, "blob_bytes_resumed": self.blob_bytes_resumed,
                "blob_error": self.blob_error,
                "apply_delay_ms": {"p50": round(statistics.median(d), 1) if d else None,
                                   "p99": round(d[math.ceil(len(d) * 0.99) - 1], 1) if d else None,
                                   "samples": len(d)}}


def _end_reader(answer, reader: threading.Thread) -> None:
    """Stop the stream's reader before the response is closed: shut the socket down (its blocked read
    returns) and wait for it, so no two threads ever touch the TLS connection at once."""
    answer._tether_ended = True  # the reader stops waiting for room in the queue
    stream = answer.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None and reader.is_alive():
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    reader.join(5)


class SyncWorker:
    """``site()``: the current site (or None); ``client()``: a PeerClient to the primary (or None when
    unpaired); ``settings()``: this appliance's FailoverSettings; ``adopt(generation)``: a newer
    generation seen on the stream."""

    def __init__(self, site: Callable, client: Callable[[], PeerClient | None], settings: Callable,
                 adopt: Callable[[int], None], keep_orphans: Callable[[int | None, str], None]):
        self.site, self.client, self.settings, self.adopt = site, client, settings, adopt
        self.keep_orphans = keep_orphans  # before a full copy replaces this one: keep what the primary lacks
        self.pending_fork: int | None = None  # set when this appliance stepped down: the new primary's fork point
        self.fork_generation: int | None = None
        self.status = SyncStatus()
        self.bandwidth = Bandwidth(self._limit_kbps)
        self._limit = (0.0, 0)
        self.sync_now = threading.Event()
        self.blob_wake = threading.Event()
        self.ack_wake = threading.Event()
        self.ack_through: int | None = None
        # entered from just before each commit of what the primary sent to just after it: refuses when this
        # appliance is no longer a backup, and holds off a promotion meanwhile (RoleManager.applying)
        self.guard: Callable[[], ContextManager] | None = None

    def _limit_kbps(self) -> int:
        """The bandwidth setting, read at most once a second (not once per line)."""
        at, kbps = self._limit
        if time.monotonic() - at > 1.0:
            try:
                kbps = self.settings().sync_bandwidth_limit_kbps
            except Exception:  # noqa: BLE001 - the site is being swapped: keep the last value
                pass
            self._limit = (time.monotonic(), kbps)
        return kbps

    # --- the change stream ---------------------------------------------------------------------------
    def follow(self, stop: threading.Event) -> None:
        site, client = self.site(), self.client()
        if site is None or client is None:
            stop.wait(RETRY_SECONDS)
            return
        fs = self.settings()
        if not fs.backup_operations_enabled:
            self.status.last_result = "paused: backup operations are disabled"
            self.status.connected = False
            stop.wait(RETRY_SECONDS)
            return
        try:
            with client:
                caught_up = self._stream(site, client, stop, interval=fs.sync_mode == "interval")
            if caught_up and fs.sync_mode == "interval":
                self.sync_now.clear()
                deadline = time.monotonic() + fs.sync_interval_minutes * 60
                while not stop.is_set() and not self.sync_now.is_set() and time.monotonic() < deadline:
                    stop.wait(0.5)
        except (PeerError, TetherError) as exc:
            self._failed(exc.message)
            stop.wait(RETRY_SECONDS)
        except Exception as exc:  # noqa: BLE001 - a broken stream (network, bad frame) is retried, never fatal
            self._failed(f"{type(exc).__name__}: {exc}")
            stop.wait(RETRY_SECONDS)
        finally:
            self.status.connected = False

    def _failed(self, message: str) -> None:
        st = self.status
        st.last_result, st.last_error, st.connected = "failed", message, False
        log.warning("failover sync: %s", message)

    def _stream(self, site, client: PeerClient, stop: threading.Event, interval: bool) -> bool:
        """Follow the stream; True when it ended caught up (interval mode). A reader thread (part of this
        job, ended with it) takes lines off the connection while batches are applied, so what arrived
        before a primary died is still applied, and batches that queued up meanwhile are applied
        together, in one transaction (group commit)."""
        st = self.status
        after, after_hash = sink.position(site.engine)
        st.applied_seq = after
        self.sync_now.clear()
        with client.stream("GET", "/peer/v1/changes", {"after": after, "hash": after_hash or ""},
                           read_timeout=READ_TIMEOUT) as answer:
            st.connected = True
            lines: queue.Queue = queue.Queue(maxsize=QUEUE_LINES)
            reader = threading.Thread(target=self._read, args=(answer, lines, stop), name="tether-sync-reader",
                                      daemon=True)
            reader.start()
            try:
                return self._follow_lines(site, client, lines, stop, interval)
            finally:
                _end_reader(answer, reader)

    def _follow_lines(self, site, client: PeerClient, lines: queue.Queue, stop: threading.Event,
                      interval: bool) -> bool:
        st = self.status
        while True:
            item = lines.get()
            if item is _END:
                return False
            if isinstance(item, BaseException):
                raise item
            if stop.is_set():
                return False  # the role changed (e.g. this appliance was promoted): apply nothing more
            msg = item
            now = time.time()
            st.last_heard = now
            kind = msg.get("type")
            if kind == "batch":
                self._apply(site, self._more_batches(msg, lines))
            elif kind == "heartbeat":
                st.primary_head = max(st.primary_head, sink.message_int(msg, "head"))
                if st.applied_seq >= st.primary_head:
                    st.caught_up_at = now
                    st.last_sync_at, st.last_result, st.last_error = now, "ok", None
                    if interval:
                        return True
            elif kind == "resync":
                self.keep_orphans(msg.get("fork_seq"), msg.get("reason", ""))
                self._full_copy(site, client, msg.get("reason", ""))
                return False
            else:
                raise StreamError(f"the primary sent an unknown stream message {str(kind)[:64]!r}; nothing of it was "
                                  f"applied", hint=sink.STREAM_HINT)
            if stop.is_set() or self.sync_now.is_set():
                return False

    def _read(self, answer, lines: queue.Queue, stop: threading.Event) -> None:
        def put(item) -> bool:
            while not getattr(answer, "_tether_ended", False):
                try:
                    lines.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for line in answer.iter_lines():
                self.bandwidth.take(len(line) + 1)
                self.status.bytes_received += len(line) + 1
                if (line and not put(sink.parse_message(line))) or stop.is_set():
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the applying thread, which decides
            put(exc)

    @staticmethod
    def _more_batches(first: dict, lines: queue.Queue) -> dict:
        """``first`` and the batches queued right behind it, as one (at most GROUP_ENTRIES entries)."""
        entries, head, gen = list(sink.check_batch(first)), first.get("head"), first.get("generation")
        while len(entries) < GROUP_ENTRIES:
            with lines.mutex:
                nxt = lines.queue[0] if lines.queue else None
            if not isinstance(nxt, dict) or nxt.get("type") != "batch":
                break
            try:
                more = sink.check_batch(nxt)
            except StreamError:
                break  # applied alone next, and refused with its own message
            lines.get_nowait()
            entries += more
            head, gen = nxt.get("head", head), nxt.get("generation", gen)
        return {"type": "batch", "entries": entries, "head": head, "generation": gen}

    def _apply(self, site, msg: dict) -> None:
        st = self.status
        entries = sink.check_batch(msg)
        # the lag counts this batch even when it cannot be applied (a full disk): the status says how far behind
        st.primary_head = max(st.primary_head, sink.message_int(msg, "head", entries[-1]["seq"]))
        last = sink.apply_batch(site.engine, entries, self.guard)
        if msg.get("generation") is not None:  # adopted with the batch: a refused one changes nothing
            self.adopt(sink.message_int(msg, "generation"))
        now = time.time()
        for e in entries:
            st.delays_ms.append((now - e["at"]) * 1000)
        st.applied_seq = last
        st.entries_applied += len(entries)
        st.last_sync_at, st.last_result, st.last_error = now, "ok", None
        if st.applied_seq >= st.primary_head:
            st.caught_up_at = now
        if sink.blob_refs(entries):
            self.blob_wake.set()
        self.ack_through = last
        self.ack_wake.set()

    # --- acknowledgements (their own job: an ack's round trip never holds up applying) ----------------
    def acks(self, stop: threading.Event) -> None:
        client = self.client()
        if client is None:
            stop.wait(RETRY_SECONDS)
            return
        sent = None
        with client:
            while not stop.is_set():
                self.ack_wake.wait(RETRY_SECONDS)
                self.ack_wake.clear()
                through = self.ack_through
                if through is None or through == sent:
                    continue
                try:
                    client.post_json("/peer/v1/ack", {"through": through})
                    sent = through
                except (PeerError, TetherError) as exc:
                    log.debug("acknowledging %s to the primary failed: %s", through, exc.message)
                    stop.wait(0.2)
                    self.ack_wake.set()  # try again

    def _full_copy(self, site, client: PeerClient, reason: str) -> None:
        st = self.status
        log.warning("failover sync: a full copy of the primary's site is needed (%s)", reason)
        with client.stream("GET", "/peer/v1/snapshot", read_timeout=120) as answer:
            def lines():
                for line in answer.iter_lines():
                    self.bandwidth.take(len(line) + 1)
                    st.bytes_received += len(line) + 1
                    yield line
            header = sink.apply_snapshot(site.engine, lines(), site.info().name, self.guard)
        st.full_syncs += 1
        st.applied_seq = int(header["head"])
        st.primary_head = max(st.primary_head, st.applied_seq)
        st.last_sync_at, st.last_result, st.last_error = time.time(), "ok (full copy)", None
        self.blob_wake.set()
        self.ack_through = st.applied_seq
        self.ack_wake.set()

    # --- blobs -----------------------------------------------------------------------------------------
    def fetch_blobs(self, stop: threading.Event) -> None:
        st = self.status
        site, client = self.site(), self.client()
        if site is None or client is None or not self.settings().backup_operations_enabled:
            stop.wait(RETRY_SECONDS)
            return
        self.blob_wake.clear()
        stores = {"files": site.files.blobs, "recordings": site.recordings}
        missing = [(k, sha, size) for k, sha, size in sink.all_blob_refs(site.engine) if not stores[k].exists(sha)]
        missing = list(dict.fromkeys(missing))
        st.blobs_pending = len(missing)
        st.blob_bytes_pending = sum(blobs.pending_bytes(stores[k], sha, size) for k, sha, size in missing)
        try:
            with client:
                for kind, sha, size in missing:
                    if stop.is_set():
                        return
                    self._fetch_one(client, stores[kind], kind, sha, size)
                    st.blobs_pending -= 1
                    st.blob_bytes_pending = max(0, st.blob_bytes_pending - size)
                    st.blobs_fetched += 1
            st.blob_error = None
        except (PeerError, TetherError) as exc:
            st.blob_error = exc.message
            log.warning("failover blob sync: %s", exc.message)
            stop.wait(RETRY_SECONDS)
            return
        except OSError as exc:  # disk full, read-only: said in status, retried
            st.blob_error = f"{exc.strerror or exc} while storing a blob"
            log.warning("failover blob sync: %s", st.blob_error)
            stop.wait(RETRY_SECONDS)
            return
        deadline = time.monotonic() + BLOB_RESCAN_SECONDS
        while not stop.is_set() and not self.blob_wake.is_set() and time.monotonic() < deadline:
            self.blob_wake.wait(0.5)

    def _fetch_one(self, client: PeerClient, store, kind: str, sha: str, size: int) -> None:
        def open_range(offset: int):
            headers = {"Range": f"bytes={offset}-"} if offset else None
            return client.stream("GET", f"/peer/v1/blobs/{kind}/{sha}", headers=headers, read_timeout=READ_TIMEOUT)

        def take(n: int) -> None:
            self.bandwidth.take(n)
            self.status.blob_bytes_received += n

        self.status.blob_bytes_resumed += blobs.fetch(store, sha, size, open_range, take).resumed_from
