"""Printing results and errors, the one place for the CLI's output conventions
(docs/cli.md): data on stdout (text or JSON; a document as a two-column
table, times in ISO 8601), errors on stderr as ``Error: ...`` plus ``Try:
...`` (with ``--json``: one JSON object ``{"error", "message", "hint"?,
"exit_code"}``), the exit code of the error class, and progress on stderr
(Rich, only when stderr is a terminal)."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from tether.core.errors import TetherError


def _json_mode(value: bool) -> bool:
    """The option's callback: remembered so that errors of this command are printed as JSON too."""
    global _AS_JSON
    _AS_JSON = bool(value)
    return value


_AS_JSON = False
JsonOpt = Annotated[bool, typer.Option("--json", callback=_json_mode,
                                       help="Print machine-readable JSON on stdout (and errors as JSON on stderr).")]

EXIT_UNREACHABLE = 8
# the ``error`` name of an exit code, for errors raised by the CLI itself (the API's own codes otherwise)
ERROR_NAMES = {1: "error", 2: "invalid", 3: "unauthorized", 4: "not_found", 5: "conflict", 6: "throttled",
               7: "integrity", EXIT_UNREACHABLE: "unreachable"}


def iso(ts: float | int | None) -> str:
    """A Unix time as ISO 8601 in UTC (``2026-12-02T07:01:05Z``); empty for None."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _flat(data: dict, prefix: str = "") -> list[tuple[str, str]]:
    """A nested document as (key, value) rows: sub-documents as ``a.b``, lists joined by commas."""
    rows: list[tuple[str, str]] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            rows += _flat(v, key + ".")
        elif isinstance(v, (list, tuple)):
            rows.append((key, ", ".join(json.dumps(x, default=str) if isinstance(x, (dict, list)) else str(x)
                                        for x in v) or "none"))
        elif isinstance(v, bool):
            rows.append((key, "yes" if v else "no"))
        else:
            rows.append((key, "" if v is None or v == {} else str(v)))
    return rows


def table(data: dict) -> str:
    """A document as a two-column table (what ``emit`` prints for a dict without its own text)."""
    rows = _flat(data)
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def emit(data, as_json: bool, text: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    elif text is not None:
        sys.stdout.write(text.rstrip("\n") + "\n")
    elif isinstance(data, dict):
        sys.stdout.write(table(data) + "\n")
    elif isinstance(data, list):
        for row in data:
            sys.stdout.write((json.dumps(row, default=str) if not isinstance(row, str) else row) + "\n")
    else:
        sys.stdout.write(f"{data}\n")


def fail(message: str, code: int, hint: str | None = None, error: str | None = None) -> None:
    if _AS_JSON:
        body = {"error": error or ERROR_NAMES.get(code, "error"), "message": message, "exit_code": code}
        if hint:
            body["hint"] = hint
        sys.stderr.write(json.dumps(body, sort_keys=True) + "\n")
    else:
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
        fail(exc.message, exc.exit_code, exc.hint, exc.code)
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


@contextmanager
def progress(what: str, total: float | None = None, unit: str = "count"):
    """Progress of a long step on stderr, only when stderr is a terminal (Rich; nothing with ``--json``):
    yields ``advance(done, total=None, description=None)`` to report the work done so far (absolute), a
    no-op otherwise. ``unit`` "bytes" shows sizes; without a total, a pulsing bar and the time taken."""
    if not sys.stderr.isatty() or _AS_JSON:
        yield lambda done, total=None, description=None: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  DownloadColumn() if unit == "bytes" else MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(what, total=total)

        def advance(done, total=None, description=None):
            bar.update(task, completed=done, **({"total": total} if total is not None else {}),
                       **({"description": description} if description else {}))

        yield advance
        t = bar.tasks[0]
        if t.total is None:
            bar.update(task, total=max(t.completed, 1), completed=max(t.completed, 1))
