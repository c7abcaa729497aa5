"""Installing and updating the site from a verified site package (SITE-04).

A new appliance has no site. Installing a package creates the site database
(Alembic to the head revision this software runs), records the site's name,
edition and version, and creates the local administrator ``admin`` with the
default password ``password``, which must be changed at first login.
Installing a newer package of the same site is the update path: the
migrations run and the version is raised. Everything is checked before
anything is written; a fresh install is built in a staging directory and
renamed into place, so a failure leaves no half-made site behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tether.core.db import make_engine, sqlite_url
from tether.core.errors import Conflict, Invalid
from tether.core.passwords import DEFAULT_PASSWORD, hash_password
from tether.core.paths import DataDir
from tether.core.releases import CATALOG, Version

from . import schema
from .package import SitePackage
from .tables import site_info, users

DEFAULT_ADMIN = "admin"


@dataclass(frozen=True)
class SiteInfo:
    name: str
    edition: str
    version: str
    installed_at: float
    updated_at: float

    def public(self) -> dict:
        return {"name": self.name, "edition": self.edition, "version": self.version,
                "installed_at": self.installed_at, "updated_at": self.updated_at}


def read_info(engine: sa.Engine) -> SiteInfo | None:
    with engine.connect() as c:
        row = c.execute(sa.select(site_info).where(site_info.c.id == 1)).mappings().first()
    return None if row is None else SiteInfo(row["name"], row["edition"], row["version"],
                                              row["installed_at"], row["updated_at"])


def check_installable(pkg: SitePackage, current: SiteInfo | None) -> str:
    """Return 'install' or 'update', or raise why this package cannot go on this appliance."""
    release = CATALOG.get(pkg.version)
    head = schema.head_revision()
    if release is None:
        raise Invalid(f"site package version {pkg.version} is not a release this appliance software knows",
                      field="version", hint="update the appliance software first")
    if release.schema_revision != head:
        raise Invalid(f"site package version {pkg.version} belongs to an older software line; "
                      f"this appliance runs schema {head}", field="version",
                      hint="install a site package built for this appliance's release")
    if current is None:
        return "install"
    if current.name != pkg.site_name:
        raise Conflict(f"this appliance hosts site {current.name!r}; the package is for {pkg.site_name!r}",
                       hint="factory-reset the appliance to host another site")
    if current.edition != pkg.edition:
        raise Conflict(f"the site is {current.edition}; the package is {pkg.edition}")
    cur, new = Version.parse(current.version), Version.parse(pkg.version)
    if new == cur:
        return "none"  # already in place (e.g. put there by a restore): nothing more to do
    if new < cur:
        raise Conflict(f"site version {current.version} is newer than the package's {pkg.version}; "
                       "downgrades are not supported")
    return "update"


def install_new(data: DataDir, pkg: SitePackage, url: str | None = None) -> None:
    """Create the site: SQLite in <data>/site/site.db, or a new schema of the (empty) database at
    ``url`` (OPS-03; site/location.py). Schema and first rows are written in one transaction
    (PostgreSQL DDL is transactional), then the staged site directory, which names its database,
    is renamed into place."""
    from . import location

    staging = data.site_staging
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700)
    db = location.target(url, staging)
    created = False
    try:
        if db.external:
            check_empty(url)
            location.create_schema(db)
            created = True
        engine = db.engine()
        try:
            now = time.time()
            with engine.begin() as c:
                schema.upgrade_conn(c, "head")
                c.execute(site_info.insert().values(id=1, name=pkg.site_name, edition=pkg.edition,
                                                    version=pkg.version, installed_at=now, updated_at=now))
                c.execute(users.insert().values(
                    username=DEFAULT_ADMIN, display_name="Administrator",
                    password_hash=hash_password(DEFAULT_PASSWORD), must_change_password=True, is_admin=True,
                    permissions=[], enabled=True, created_at=now))
        finally:
            engine.dispose()
        for sub in ("files", "recordings"):
            (staging / sub).mkdir()
        location.write_pointer(staging, db)
        # <data>/site is a symlink to site-<id>/, so a restore can swap sites atomically
        final = data.root / f"site-{secrets.token_hex(6)}"
        staging.rename(final)
        os.symlink(final.name, data.site_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            location.drop(db)
        raise


def check_empty(url: str) -> None:
    """A database that is to receive a site holds no site already (neither tables on its default
    search path nor a schema of ours)."""
    from . import location

    engine = make_engine(url)
    try:
        if sa.inspect(engine).get_table_names():
            raise Conflict("the site database named by the appliance's site database URL is not empty",
                           hint="give an empty database (CREATE DATABASE ...) to host the site")
    finally:
        engine.dispose()
    held = location.our_schemas(url)
    if held:
        raise Conflict(f"the site database named by the appliance's site database URL already holds a site "
                       f"(schema {held[0]})", hint="give an empty database (CREATE DATABASE ...) to host the site")


def update(engine: sa.Engine, pkg: SitePackage) -> None:
    schema.upgrade(engine, "head")
    with engine.begin() as c:
        c.execute(site_info.update().where(site_info.c.id == 1).values(version=pkg.version, updated_at=time.time()))


def site_exists(data: DataDir) -> bool:
    """A site is installed when its directory exists (its database may live on PostgreSQL)."""
    return Path(data.site_dir).is_dir()
