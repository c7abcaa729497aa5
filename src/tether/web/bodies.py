"""Request-body documentation from the domain's pydantic models: a route whose JSON object body
the domain validates itself (one action, one function) declares ``openapi_extra=body_of(Model)``,
and ``install(api)`` puts the model's JSON schema (with its nested models) in the OpenAPI
document. The validation path is unchanged: the route still hands the plain dict to the domain."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_MARK = "x-tether-model"
_MODELS: dict[str, type[BaseModel]] = {}


def body_of(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose JSON body ``model`` validates."""
    key = f"{model.__module__}.{model.__qualname__}"
    _MODELS[key] = model
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": {_MARK: key}}}}}


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
