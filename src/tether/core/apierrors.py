"""The one JSON error answer of every Tether API (the appliance's site and
/appliance APIs, the support desk's), and how an API documents it.

* ``ErrorBody``: ``{"error", "message", "field"?, "hint"?, "errors"?}``, what
  ``tether.core.errors.TetherError.to_dict`` gives, with the status the error
  class names.
* ``errors(401, 404, ...)``: the ``responses`` entry of an operation declaring
  the error statuses it can answer, each with ``ErrorBody``; ``ERROR_RESPONSES``
  declares all of them (an app that documents them once for every operation).
* ``install_json_handlers(app)``: the exception handlers that answer in that
  shape (domain errors, request validation, Starlette's HTTP errors), with the
  headers a status calls for (``Retry-After``, ``WWW-Authenticate``, ``Allow``).

This module owns the shape and its handlers only; which status a situation
deserves is the domain's (``tether.core.errors``), and HTML pages render their
own errors."""

from __future__ import annotations

from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match

from .errors import Throttled, TetherError


class ErrorBody(BaseModel):
    """The one error shape every JSON API answers (tether.core.errors.TetherError.to_dict)."""
    model_config = ConfigDict(extra="allow")
    error: str
    message: str
    hint: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


ERROR_STATUSES = {400: "Bad request (an integrity or format problem)", 401: "Not authenticated",
                  403: "Not permitted", 404: "Not found", 405: "Method not allowed", 409: "Conflict",
                  413: "Request body too large", 422: "Invalid input (names the field)",
                  429: "Too many attempts (see Retry-After)", 503: "Not available on this appliance now"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation that can answer these error statuses (each with ``ErrorBody``)."""
    return {status: {"model": ErrorBody, "description": ERROR_STATUSES[status]} for status in statuses}


# declared once per API app (FastAPI(responses=...)): every operation documents every code the
# handlers here can answer, with the error schema
ERROR_RESPONSES = errors(*ERROR_STATUSES)


def error_headers(exc: TetherError, *, bearer: bool = True) -> dict | None:
    """The headers an error's status calls for, the same on the JSON APIs and the HTML pages:
    ``Retry-After`` on a 429, ``WWW-Authenticate: Bearer`` on an API's 401 (``bearer``; a page's
    login form is no bearer challenge)."""
    if isinstance(exc, Throttled):
        return {"Retry-After": str(exc.retry_after)}
    if exc.status == 401 and bearer:
        return {"WWW-Authenticate": "Bearer"}
    return None


# FastAPI keeps an included router as one entry of the app's routes; this walks them to the
# routes with their full paths (plain Starlette route lists are already flat)
_flat_routes = getattr(fastapi.routing, "_iter_included_route_candidates", iter)


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: the methods of every route of the answering app whose path
    matches, not only the first one's (Starlette stops at the first route with the path, and
    GET and PUT of one path are often two routes)."""
    methods: set[str] = set()
    for route in _flat_routes(request.app.router.routes):
        match, _child = route.matches({**request.scope, "method": "\x00"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


def error_response(exc: TetherError) -> JSONResponse:
    body = exc.to_dict()
    details = getattr(exc, "details", None)
    if details:
        body["errors"] = details
    return JSONResponse(body, status_code=exc.status, headers=error_headers(exc))


_LOCATIONS = ("body", "query", "path", "header", "cookie", "form")


def validation_body(exc: RequestValidationError) -> dict:
    """A request FastAPI could not parse as the 422 body: the first field at fault named in
    ``field`` and ``message``, every one in ``errors``."""
    errs = exc.errors()
    first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":  # its loc is a character position, not a field
        why = (first.get("ctx") or {}).get("error") or "JSON decode error"
        return {"error": "invalid", "message": f"the body is not valid JSON: {why}", "field": None,
                "errors": [{"field": "body", "message": str(first.get("msg"))}]}
    loc = [str(p) for p in first.get("loc", ()) if p not in _LOCATIONS]
    field = ".".join(loc) or None
    msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return {"error": "invalid", "message": f"{field}: {msg}" if field else msg, "field": field,
            "errors": [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg"))}
                       for e in errs]}


def install_json_handlers(app: FastAPI) -> None:
    @app.exception_handler(TetherError)
    async def _tether(_request: Request, exc: TetherError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        return JSONResponse(validation_body(exc), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return JSONResponse({"error": "http", "message": str(exc.detail)}, status_code=exc.status_code,
                            headers=headers or None)
