"""Making and opening appliance data directories: ``initialize`` makes a
fresh appliance (identity, built-in certificate, admin / password, trusted
vendor keys); ``open_offline`` is the one way an offline command opens a
data directory, with the data-directory lock held for the whole command
(initialisation and seeding included)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import tether.certs.expiry  # noqa: F401 - registers its table in appliance.db's metadata
import tether.certs.pending  # noqa: F401 - likewise
from tether.appliance import admin as admin_mod
from tether.appliance import store
from tether.appliance.identity import default_hostname, ensure_identity
from tether.appliance.settings import Networking, Security
from tether.certs.builtin import BUILTIN_NAME, generate_builtin
from tether.certs.store import CertStore
from tether.core.db import make_engine, sqlite_url
from tether.core.lock import DataLock
from tether.core.paths import DataDir
from tether.core.secretbox import SecretBox
from tether.site import package as site_package


def create_schema(engine) -> None:
    store.create_schema(engine)  # the certs tables are registered by the imports above


def initialize(data: DataDir, trusted_vendor_keys: list[bytes], model: str | None = None,
               identity: dict | None = None) -> None:
    """Make a fresh appliance in an empty data directory (idempotent: an
    initialised directory is left alone). ``identity`` keeps a model and serial
    number across a factory reset (they belong to the hardware)."""
    if data.initialized:
        return
    for k in trusted_vendor_keys:  # validate before writing
        site_package.load_public_key(k)
    data.ensure()
    box = SecretBox.create(data.secret_key)
    engine = make_engine(sqlite_url(data.appliance_db))
    try:
        create_schema(engine)
        if identity:
            with engine.begin() as c:
                store.put_setting(c, "identity", identity)
        ident = ensure_identity(engine, model)
        cert_pem, key_der = generate_builtin(ident["serial"])
        with engine.begin() as c:
            admin_mod.create_default(c)
            store.put_setting(c, "trusted_vendor_keys", [k.decode() for k in trusted_vendor_keys])
            store.put_setting(c, "networking", Networking(hostname=default_hostname_safe()).model_dump())
            store.put_setting(c, "security", Security().model_dump())
            CertStore(engine, box).add(BUILTIN_NAME, cert_pem, key_der, builtin=True, conn=c)
    finally:
        engine.dispose()


def default_hostname_safe() -> str:
    from tether.core.validate import hostname

    try:
        return hostname(default_hostname())
    except ValueError:
        return "tether.local"


@contextlib.contextmanager
def locked(data: DataDir) -> Iterator[DataLock]:
    """Hold the data directory's lock (refused while an appliance runs on it)."""
    lock = DataLock(data.runtime_dir).acquire()
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def open_offline(data: DataDir):
    """The appliance over ``data`` for one offline command, the lock held throughout."""
    from .appliance import Appliance

    with locked(data):
        appliance = Appliance(data)
        try:
            yield appliance
        finally:
            appliance.close()
