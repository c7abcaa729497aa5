"""Printing results and errors: data on stdout (text or JSON), errors on
stderr as ``Error: ...`` plus ``Try: ...``, and the exit code of the error
class (docs/cli.md)."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from tether.core.errors import TetherError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

EXIT_UNREACHABLE = 8


def emit(data, as_json: bool, text: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    elif text is not None:
        sys.stdout.write(text.rstrip("\n") + "\n")
    elif isinstance(data, dict):
        width = max((len(str(k)) for k in data), default=0)
        for k, v in data.items():
            sys.stdout.write(f"{str(k).ljust(width)}  {v}\n")
    elif isinstance(data, list):
        for row in data:
            sys.stdout.write((json.dumps(row, default=str) if not isinstance(row, str) else row) + "\n")
    else:
        sys.stdout.write(f"{data}\n")


def fail(message: str, code: int, hint: str | None = None) -> None:
    sys.stderr.write(f"Error: {message}\n")
    if hint:
        sys.stderr.write(f"Try: {hint}\n")
    raise typer.Exit(code)


@contextmanager
def errors():
    """Turn domain errors into a message and the documented exit code."""
    try:
        yield
    except TetherError as exc:
        fail(exc.message, exc.exit_code, exc.hint)
    except OSError as exc:
        fail(str(exc), 1)


def out_target(raw: str, suffix: str) -> tuple[Path, Path | None]:
    """Where an ``--out`` writes: ``(directory, file)``. A name ending in ``suffix`` (and no slash) is that
    file, in a directory that must exist; anything else (an existing directory, a trailing slash, a new
    name) is a directory, created when missing (file None: the default name). Never a file named after a
    directory."""
    path = Path(raw)
    if raw.endswith(suffix) and not raw.endswith(("/", os.sep)) and not path.is_dir():
        if not path.parent.is_dir():
            fail(f"--out {raw}: directory {path.parent} does not exist", 2,
                 f"create it first, or give --out a directory (it is created) for the default file name")
        return path.parent, path
    if path.exists() and not path.is_dir():
        fail(f"--out {raw}: not a directory, and a file written here must end in {suffix}", 2,
             f"give --out a directory, or a file name ending in {suffix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out {raw}: cannot create the directory: {exc.strerror}", 2)
    return path, None
