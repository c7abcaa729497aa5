"""``tether storage migrate`` (OPS-06): move a stopped appliance's site
objects (file store and recordings) from local disk to the configured
S3-compatible bucket or back, resumably, each object's SHA-256 checked in the
target, switching over only once every object is there; ``--dry-run`` says
what would be copied. The bucket itself is configured like any settings
section: the /appliance/storage page, ``PUT /appliance/api/storage``,
``tether settings get-storage`` / ``set-storage``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .output import JsonOpt, emit, errors

storage_app = typer.Typer(help="Where the site's file store and recordings live (local disk or a bucket).",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(storage_app, name="storage")


@storage_app.command("migrate")
def migrate(to: Annotated[str, typer.Option("--to", help="local or s3")],
            data: Annotated[Path, typer.Option("--data", help="The stopped appliance's data directory")],
            dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be copied")] = False,
            as_json: JsonOpt = False):
    """Copy every object to the other backend (verified; a second run resumes), then switch to it."""
    with errors():
        from tether.core.errors import Invalid
        from tether.core.paths import DataDir
        from tether.runtime import open_offline

        if to not in ("local", "s3"):
            raise Invalid("--to: local or s3", field="to")

        def progress(kind: str, sha: str, size: int) -> None:
            if not as_json:
                typer.echo(f"copied {kind}/{sha} ({size} bytes)", err=True)

        with open_offline(DataDir.at(data)) as a:
            r = a.migrate_storage(to, dry_run=dry_run, actor="cli", progress=progress)
        if dry_run:
            text = (f"Dry run: {r['to_copy']} objects ({r['to_copy_bytes']} bytes) would be copied from {r['source']} "
                    f"to {r['target']}; {r['present']} are there already; nothing was changed")
        else:
            text = (f"{r['copied']} objects ({r['copied_bytes']} bytes) copied to {r['target']}, {r['present']} "
                    f"were there already; the site now uses {to}")
        for m in r["missing"]:
            text += f"\nMissing: {m['kind']} {m['sha256']} is indexed but in neither store (left out of a backup)"
        emit(r, as_json, text)
