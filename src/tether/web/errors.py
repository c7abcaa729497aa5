"""Turning domain errors into responses: JSON bodies
``{"error", "message", "field"?, "hint"?}`` for the APIs, with the status the
error class names (see tether.core.errors)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from tether.core.errors import Throttled, TetherError

log = logging.getLogger("tether.web")


def error_response(exc: TetherError) -> JSONResponse:
    body = exc.to_dict()
    details = getattr(exc, "details", None)
    if details:
        body["errors"] = details
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def install_json_handlers(app: FastAPI) -> None:
    @app.exception_handler(TetherError)
    async def _tether(_request: Request, exc: TetherError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return JSONResponse({"error": "invalid", "message": f"{field}: {msg}" if field else msg, "field": field,
                             "errors": [{"field": ".".join(str(p) for p in e.get("loc", ())),
                                         "message": str(e.get("msg"))} for e in errors]}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException):
        return JSONResponse({"error": "http", "message": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
