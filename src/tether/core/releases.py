"""Versions and the release catalog (REL-01..03), shared by site packages,
backup version rules and the vendor's support desk.

A version is X.Y (a major release) or X.Y.Z (a maintenance release of X.Y);
maintenance versions fall under their major for support (REL-01). A major is
supported for two years from its GA date, then retired (REL-02). Each release
lists the versions it accepts upgrades and backups from (REL-03); a source is
named by major ("1.0" covers 1.0, 1.0.1, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from .errors import Invalid

_VERSION = re.compile(r"^(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0
    has_patch: bool = field(default=False, compare=False)

    @classmethod
    def parse(cls, text: str, *, field_name: str = "version") -> "Version":
        m = _VERSION.match(text.strip()) if isinstance(text, str) else None
        if not m:
            raise Invalid(f"{text!r} is not a version of the form X.Y or X.Y.Z", field=field_name)
        patch = m.group(3)
        return cls(int(m.group(1)), int(m.group(2)), int(patch or 0), patch is not None)

    @property
    def major_line(self) -> str:
        """The major release this version belongs to, e.g. '1.2' for 1.2.3."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        if self.has_patch:
            return f"{self.major}.{self.minor}.{self.patch}"
        return self.major_line


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


@dataclass(frozen=True)
class Release:
    version: Version
    ga: date
    upgrade_from: tuple[str, ...] = ()  # major lines, e.g. ("1.0",)
    critical_security: bool = False
    schema_revision: str = "0001"

    @property
    def is_major(self) -> bool:
        return not self.version.has_patch or self.version.patch == 0


@dataclass
class Catalog:
    releases: list[Release]

    def get(self, version: str | Version) -> Release | None:
        v = Version.parse(str(version)) if not isinstance(version, Version) else version
        for r in self.releases:
            if r.version == v:
                return r
        return None

    def major_ga(self, major_line: str) -> date | None:
        dates = [r.ga for r in self.releases if r.version.major_line == major_line]
        return min(dates) if dates else None

    def end_of_support(self, version: str | Version) -> date | None:
        v = Version.parse(str(version))
        ga = self.major_ga(v.major_line)
        return _add_years(ga, 2) if ga else None

    def is_supported(self, version: str | Version, on: date) -> bool:
        """REL-02: a version's major is supported for two years from its GA date."""
        eos = self.end_of_support(version)
        return eos is not None and on < eos

    def supports_upgrade(self, target: str | Version, source: str | Version) -> bool:
        """REL-03: may ``target`` take an upgrade (or a backup) from ``source``?"""
        t = Version.parse(str(target))
        s = Version.parse(str(source))
        if s > t:
            return False
        if s.major_line == t.major_line:
            return True
        rel = self.get(t)
        return rel is not None and s.major_line in rel.upgrade_from


# The product's own catalog. Dates are GA dates; schema_revision is the site
# database's Alembic revision that release runs.
CATALOG = Catalog(
    releases=[
        Release(Version.parse("0.9.0"), date(2025, 3, 3), (), schema_revision="0001"),  # beta; no upgrade path
        Release(Version.parse("1.0.0"), date(2025, 12, 1), (), schema_revision="0001"),
        Release(Version.parse("1.0.1"), date(2026, 2, 2), (), schema_revision="0001"),
        Release(Version.parse("1.1.0"), date(2026, 9, 1), ("1.0",), schema_revision="0002"),
        Release(Version.parse("1.2.0"), date(2026, 11, 30), ("1.0", "1.1"), schema_revision="0003"),
        Release(Version.parse("1.2.1"), date(2026, 12, 2), ("1.0", "1.1"), schema_revision="0004"),
    ]
)


def current() -> Release:
    from tether import __version__

    rel = CATALOG.get(__version__)
    assert rel is not None, f"release {__version__} is missing from the catalog"
    return rel
