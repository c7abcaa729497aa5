"""Browsable API documentation (Swagger UI) served from the installed package
itself, never from a CDN: an air-gapped appliance or desk shows it the same.
The assets are the ones the fastapi-offline wheel ships; the page loads them
and its start-up script from the same origin, so it runs under a
Content-Security-Policy of ``default-src 'self'`` (no inline script or style).

``routes(prefix, openapi_url, title)`` gives the Starlette routes of one
documentation page at ``<prefix>`` and its assets under ``<prefix>/assets/``;
each face mounts them where its API lives. This module owns only the page and
its assets; what the API documents is each face's OpenAPI document."""

from __future__ import annotations

from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

_INIT_JS = """\
window.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("swagger-ui");
  // deep links off: Swagger UI nests their anchors inside each operation's button (axe: nested-interactive)
  window.ui = SwaggerUIBundle({url: el.dataset.openapi, dom_id: "#swagger-ui", validatorUrl: null,
    deepLinking: false, layout: "BaseLayout", presets: [SwaggerUIBundle.presets.apis],
    onComplete: function () {
      var servers = document.getElementById("servers");
      if (servers) servers.setAttribute("aria-label", "Server");
    }});
});
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="stylesheet" href="{assets}/contrast.css">
</head>
<body>
<main id="swagger-ui" data-openapi="{openapi}" aria-label="{title}"></main>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""

# Swagger UI's light method colours and grey text fall short of WCAG AA contrast (4.5:1): darker ones
_CONTRAST_CSS = """\
.swagger-ui .opblock.opblock-get .opblock-summary-method { background: #0b5cad; }
.swagger-ui .opblock.opblock-post .opblock-summary-method { background: #1b6e3f; }
.swagger-ui .opblock.opblock-put .opblock-summary-method { background: #8a4b00; }
.swagger-ui .opblock.opblock-delete .opblock-summary-method { background: #b01c1c; }
.swagger-ui .opblock.opblock-patch .opblock-summary-method { background: #0f6b5c; }
.swagger-ui .opblock.opblock-head .opblock-summary-method,
.swagger-ui .opblock.opblock-options .opblock-summary-method { background: #5a3d99; }
.swagger-ui .info .title small { background: #4a5058; }
.swagger-ui .info .title small.version-stamp { background: #1b6e3f; }
.swagger-ui .info .base-url, .swagger-ui .info .url, .swagger-ui .opblock .opblock-summary-description,
.swagger-ui .opblock-description-wrapper p, .swagger-ui .parameter__in, .swagger-ui .parameter__type,
.swagger-ui .prop-format, .swagger-ui .response-col_links { color: #333; }
.swagger-ui .opblock-tag small { color: #333; }
.swagger-ui .json-schema-2020-12-expand-deep-button { color: #1f4f8f; }
.swagger-ui .btn.authorize { color: #1b6e3f; border-color: #1b6e3f; }
.swagger-ui .btn.authorize svg { fill: #1b6e3f; }
"""

_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def routes(prefix: str, openapi_url: str, title: str) -> list[Route]:
    """The page at ``prefix`` and its assets under ``prefix/assets/``, as absolute paths: add them
    to the top-level application (ahead of a mount that would take the same prefix)."""
    html = _PAGE.format(title=escape(title), assets=escape(prefix) + "/assets", openapi=escape(openapi_url))

    async def page(request: Request) -> Response:
        return HTMLResponse(html, headers={"cache-control": "no-cache"})

    async def init(request: Request) -> Response:
        return Response(_INIT_JS, media_type="text/javascript")

    async def contrast(request: Request) -> Response:
        return Response(_CONTRAST_CSS, media_type="text/css")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return FileResponse(assets_dir() / name, media_type=_ASSETS[name],
                            headers={"cache-control": "public, max-age=86400"})

    return [Route(prefix, page, methods=["GET"]), Route(prefix + "/assets/init.js", init, methods=["GET"]),
            Route(prefix + "/assets/contrast.css", contrast, methods=["GET"]),
            Route(prefix + "/assets/{name}", asset, methods=["GET"])]
