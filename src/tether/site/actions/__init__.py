"""The site's actions, one function each, as every face performs them: the
/login HTML pages, the /api JSON routes (and so the CLI, which calls the
API) and the client hub call the same function.

Each takes the site, the acting ``permissions.Actor`` (who, with what
permissions) and the caller's source address, never an HTTP request. It
checks the permission first (403: nothing is read or written), then the
edition, validates, acts and writes the audit record (names and ids, never
secrets). Modules: ``accounts`` (users and API accounts), ``config``
(configuration kinds, settings sections, the branding logo), ``files`` (the
file store) and ``history`` (logged history, recordings, session start).
They never import ``tether.web`` or ``tether.cli``."""
