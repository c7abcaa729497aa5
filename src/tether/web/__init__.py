"""The HTTP edge: the ASGI app factory, the /appliance and /login HTML pages,
their JSON twins (/appliance/api, /api), authentication and CSRF, and the
multi-listener HTTPS server. Routes parse, call the runtime and present;
they hold no domain logic."""
