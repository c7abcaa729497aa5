"""Answer shapes: pydantic models that describe what a domain function returns, derived from what
already defines it, so that a shape is written once and never drifts from its source.

``of_table(table)`` is a row as the domain reads it (each column's Python type; null where the
column is nullable), ``public_of(model, secrets)`` a document whose write-only secrets are answered
as ``<field>_set`` (booleans) instead of their values. Domain packages declare their answers with
them (or with plain models); the web layer documents its routes with those models
(``tether.web.bodies.reply``). A shape describes an answer: it never validates or filters one."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, create_model


def column_type(col: sa.Column) -> Any:
    """The Python type a column reads as (``Any`` for JSON and types without one), null if nullable."""
    try:
        py: Any = col.type.python_type
    except NotImplementedError:
        py = Any
    if py in (dict, list) or isinstance(col.type, sa.JSON):
        py = Any
    return py | None if col.nullable and py is not Any else py


@cache
def of_table(table: sa.Table, name: str | None = None, *, secrets: tuple[str, ...] = (),
             omit: tuple[str, ...] = (), only: tuple[str, ...] = (),
             extra: tuple[tuple[str, Any], ...] = ()) -> type[BaseModel]:
    """The model of a row of ``table`` (every column, or ``only`` these; ``secrets`` as
    ``<column>_set``, ``omit`` left out), with ``extra`` fields (name, type) after the columns."""
    fields: dict[str, Any] = {}
    for col in table.columns:
        if col.name in omit or only and col.name not in only:
            continue
        if col.name in secrets:
            fields[f"{col.name}_set"] = (bool, ...)
        else:
            fields[col.name] = (column_type(col), ...)
    for fname, ftype in extra:
        fields[fname] = (ftype, ...)
    return create_model(name or _camel(table.name), **fields)


@cache
def public_of(model: type[BaseModel], secrets: tuple[str, ...], name: str | None = None) -> type[BaseModel]:
    """``model`` as answered: each of ``secrets`` replaced by ``<field>_set`` (whether one is stored)."""
    if not secrets:
        return model
    fields: dict[str, Any] = {}
    for fname, info in model.model_fields.items():
        if fname in secrets:
            fields[f"{fname}_set"] = (bool, ...)
        else:
            fields[fname] = (info.annotation, info)
    return create_model(name or f"{model.__name__}Public", __config__=model.model_config, **fields)


@cache
def deleted(key: str) -> type[BaseModel]:
    """The answer of a delete: ``{<key>: the name, "deleted": true}``."""
    return create_model(f"{_camel(key)}Deleted", **{key: (str, ...), "deleted": (bool, ...)})


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.replace("-", "_").split("_"))
