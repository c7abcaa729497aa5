"""The pair as this appliance knows it: ``<data>/failover/pair.json``
(docs/formats/peer-protocol.md, "Pair file"). Local to the appliance, never
synced, never in a site backup: which appliance is the peer, where it is,
and the pin of its certificate key, set once when the pair is established.
Written aside, fsynced and renamed (core/fsutil.py)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tether.core.crashpoints import checkpoint
from tether.core.errors import TetherError
from tether.core.fsutil import fsync_dir, write_atomic

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Pair:
    peer_url: str  # https://HOST:PORT where this appliance reaches the peer
    peer_pin: str  # sha256/<b64url> of the peer's certificate key
    peer_id: str  # the peer's appliance id
    self_url: str  # where the peer reaches this appliance
    established_at: float
    established_by: str

    @property
    def peer_address(self) -> str:
        return self.peer_url.removeprefix("https://")

    def public(self) -> dict:
        return {**asdict(self), "peer_address": self.peer_address}


class PairStore:
    def __init__(self, path: Path):
        self.path = path  # DataDir.pair_file

    def load(self) -> Pair | None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TetherError(f"{self.path} is unreadable ({exc})",
                              hint="break failover (tether failover break) and establish it again") from None
        if raw.pop("version", None) != FORMAT_VERSION:
            raise TetherError(f"{self.path}: unknown format", hint="break failover and establish it again")
        return Pair(**raw)

    def save(self, pair: Pair) -> None:
        write_atomic(self.path, json.dumps({"version": FORMAT_VERSION, **asdict(pair)}, indent=1).encode())

    def clear(self) -> None:
        if self.path.exists():
            self.path.unlink()
            checkpoint("pair file: removed")
            fsync_dir(self.path.parent)
            checkpoint("pair file: dir synced")


def new_pair(peer_url: str, peer_pin: str, peer_id: str, self_url: str, actor: str) -> Pair:
    return Pair(peer_url.rstrip("/"), peer_pin, peer_id, self_url.rstrip("/"), time.time(), actor)
