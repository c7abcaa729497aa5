"""Request and answer documentation from pydantic models. A route whose JSON object body the
domain validates itself (one action, one function) declares ``openapi_extra=body_of(Model)``, and
``install(api)`` puts the model's JSON schema (with its nested models) in the OpenAPI document. The
validation path is unchanged: the route still hands the plain dict to the domain.

A route's JSON answer is declared with ``**reply(Model)`` (or ``reply(list[Model], 201)``): the
document describes the answer with the model's schema, and the route returns what the domain built,
unfiltered (no ``response_model``: the model describes, it never drops or converts a field). A file
or stream answer declares its media types with ``**file_reply(...)``. ``Ok`` is the answer of a route
that only confirms."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_MARK = "x-tether-model"
BINARY = {"schema": {"type": "string", "format": "binary"}}
_MODELS: dict[str, type[BaseModel]] = {}


def body_of(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose JSON body ``model`` validates."""
    key = f"{model.__module__}.{model.__qualname__}"
    _MODELS[key] = model
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": {_MARK: key}}}}}


class Ok(BaseModel):
    """The answer of a route that only confirms it was done."""
    ok: bool


def reply(model: Any, status: int = 200, description: str = "Successful Response",
          **response: Any) -> dict[str, Any]:
    """The route keywords documenting a JSON answer as ``model`` (a model, or ``list[Model]``);
    ``response`` adds to that status's OpenAPI response (an example, headers)."""
    return {"response_model": None,
            "responses": {status: {"model": model, "description": description, **response}}}


def file_reply(*media_types: str, status: int = 200, description: str = "The file") -> dict[str, Any]:
    """The route keywords documenting a file answer in ``media_types`` (binary content)."""
    return {"responses": {status: {"description": description,
                                   "content": {m: BINARY for m in media_types or ("application/octet-stream",)}}}}


def install(api: FastAPI) -> None:
    """Replace each marked request body schema of ``api``'s document by a reference to its model's schema."""
    generate = api.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if done:
            return done[0]
        spec = generate()
        marked = []
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
                if isinstance(media.get("schema"), dict) and _MARK in media["schema"]:
                    marked.append(media)
        keys = sorted({m["schema"][_MARK] for m in marked})
        refs, defs = models_json_schema([(_MODELS[k], "validation") for k in keys],
                                        ref_template="#/components/schemas/{model}")
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        for media in marked:
            media["schema"] = refs[(_MODELS[media["schema"][_MARK]], "validation")]
        done.append(spec)
        return spec

    api.openapi = openapi  # type: ignore[method-assign]
