"""Where the site's bytes live (OPS-06): the file store's and the recordings'
content-addressed objects, on local disk (``site.blobs.BlobStore``, under
``<data>/site/files`` and ``<data>/site/recordings``) or in an S3-compatible
bucket (``storage.s3.S3Store``). Both backends answer the same ``ObjectStore``
interface; every reader and writer of those bytes (uploads on the pages and
the API, the hub's command-shell recorder, downloads, backups and restores,
``tether storage migrate``) goes through it and never through a path.

``open_stores`` builds the pair for an appliance from its ``storage``
settings (``appliance.settings.Storage``): the admin's choice, with the
secret key unsealed by the caller. Object names: docs/formats/object-storage.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterable, Iterable, Iterator, Protocol

from tether.core.paths import DataDir

KINDS = ("files", "recordings")


class ObjectWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def finish(self) -> tuple[str, int]: ...
    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """One kind's content-addressed objects (``sha256`` hex names, written once)."""

    kind: str
    blocking: bool  # writes and reads wait on the network: faces run them on a worker thread

    def exists(self, sha: str) -> bool: ...
    def size(self, sha: str) -> int | None: ...
    def local_path(self, sha: str) -> Path | None: ...
    def writer(self, max_bytes: int | None = None, field: str = "file") -> ObjectWriter: ...
    def put_stream(self, chunks: Iterable[bytes], max_bytes: int | None = None,
                   field: str = "file") -> tuple[str, int]: ...
    async def put_async(self, chunks: AsyncIterable[bytes], max_bytes: int | None = None,
                        field: str = "file") -> tuple[str, int]: ...
    def read(self, sha: str) -> Iterator[bytes]: ...
    def read_range(self, sha: str, start: int, end: int) -> Iterator[bytes]: ...
    def remove(self, sha: str) -> None: ...
    def shas(self) -> Iterator[str]: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class Stores:
    files: ObjectStore
    recordings: ObjectStore
    backend: str  # "local" or "s3"

    def of(self, kind: str) -> ObjectStore:
        return self.files if kind == "files" else self.recordings


def local_stores(data: DataDir) -> Stores:
    from tether.site.blobs import BlobStore

    return Stores(BlobStore(data.files_dir, "files"), BlobStore(data.recordings_dir, "recordings"), "local")


def open_stores(data: DataDir, storage, secret_key: str | None, backend: str | None = None) -> Stores:
    """The stores ``storage`` (an ``appliance.settings.Storage``) names, or the ``backend`` asked for."""
    backend = backend or storage.backend
    if backend == "local":
        return local_stores(data)
    from .s3 import S3Store, connect

    client = connect(storage.s3, secret_key, data.storage_ca if storage.s3.ca_pem else None)
    return Stores(S3Store(client, storage.s3, "files", data.storage_spool / "files"),
                  S3Store(client, storage.s3, "recordings", data.storage_spool / "recordings"), "s3")
