"""Turning domain errors into responses on the appliance's faces: the JSON
APIs answer the shape every Tether API shares (``tether.core.apierrors``:
``{"error", "message", "field"?, "hint"?}`` with the status the error class
names, see tether.core.errors); this module adds the HTML app's own HTTP
error handler."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.requests import Request

from tether.core.apierrors import (ERROR_RESPONSES, ErrorBody, allowed_methods, error_headers, error_response,
                                   errors, install_json_handlers)

__all__ = ["ERROR_RESPONSES", "ErrorBody", "allowed_methods", "error_headers", "error_response", "errors",
           "install_json_handlers", "install_page_handlers"]


def install_page_handlers(app: FastAPI) -> None:
    """The HTML app's own HTTP errors: FastAPI's default answers, with the whole ``Allow`` on a 405."""

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        response = await http_exception_handler(request, exc)
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response
