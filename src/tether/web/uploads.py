"""Bounded request bodies, for uploads a face reads whole into memory (a
site package, the branding logo): the one reader an HTML page and its JSON
twin share, so both refuse the same way.

An ``Upload`` names what is uploaded and its size limit. ``bounded`` gives a
view of the request whose body may hold at most that much (plus the framing
of a multipart form): a larger declared Content-Length is refused before any
of the body is read, a body without one as soon as it crosses the limit;
either way ``TooLarge`` (413) with the same message, and nothing more is
read. Authenticate on the view: a cookie session's CSRF token is read from
the form, so from the bounded body. Bodies streamed to disk (the file
store, recordings, backups) are bounded where they are written
(``site.blobs``), not here.

``BODY_LIMITS`` is the one declaration of every request body's limit on the
appliance, enforced for every route by the ``tether.core.bodylimit``
middleware before the app reads anything: ``JSON_MAX`` for every JSON and
form body, the upload routes' own limits (with a form's framing), and the
streamed routes left to the store they write to."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from tether.certs.pkcs12 import MAX_P12_BYTES
from tether.core.bodylimit import MIB, STREAMED, BodyLimits, Limit
from tether.core.errors import Invalid, TooLarge
from tether.site.filestore import LOGO_MAX
from tether.site.package import MAX_PACKAGE_BYTES

FORM_OVERHEAD = 64 * 1024  # a multipart body's boundaries, part headers and small fields around the file
JSON_MAX = 1 * MIB  # every JSON or form body not declared below
CONFIG_IMPORT_MAX = 4 * MIB  # an /appliance configuration export (certificates and chains in PEM)


@dataclass(frozen=True)
class Upload:
    what: str  # "site package": named in the messages
    limit: int  # bytes
    field: str = "file"  # the form field (and the error's field)
    hint: str | None = None

    def too_large(self) -> TooLarge:
        return TooLarge(f"{self.what}: larger than the limit of {self.limit} bytes", field=self.field,
                        hint=self.hint)

    def bounded(self, request: Request, *, form: bool = True) -> Request:
        """The request with its body bounded to the limit (``form``: plus a multipart form's framing)."""
        limit = self.limit + (FORM_OVERHEAD if form else 0)
        declared = request.headers.get("content-length", "")
        receive = request.receive
        seen = 0

        async def limited_receive():
            nonlocal seen
            if declared.isdigit() and int(declared) > limit:
                raise self.too_large()
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise self.too_large()
            return message

        return Request(request.scope, limited_receive)

    async def read_file(self, request: Request) -> bytes:
        """The bytes of the multipart form's file field, from a ``bounded`` request; 422 when none or empty."""
        async with request.form() as form:
            upload = form.get(self.field)
            data = await upload.read(self.limit + 1) if hasattr(upload, "read") else b""
        if len(data) > self.limit:
            raise self.too_large()
        if not data:
            raise Invalid(f"upload the {self.what} file", field=self.field)
        return data

    async def read_body(self, request: Request) -> bytes:
        """A raw request body of at most the limit."""
        return await self.bounded(request, form=False).body()


SITE_PACKAGE = Upload("site package", MAX_PACKAGE_BYTES,
                      hint="a site package is the small signed .tsp file the vendor sends; check the file chosen")
LOGO = Upload("logo", LOGO_MAX, field="logo")
P12 = Upload(".p12 file", MAX_P12_BYTES)
COPIES = Upload("site package", MAX_PACKAGE_BYTES, field="package",  # and the vendor key, within the framing
                hint="show the .tsp file installed last and the vendor's public key (PEM)")

BODY_LIMITS = BodyLimits(JSON_MAX, [
    Limit("POST", "/appliance/api/site-package", SITE_PACKAGE.limit + FORM_OVERHEAD, SITE_PACKAGE.too_large()),
    Limit("POST", "/appliance/site", SITE_PACKAGE.limit + FORM_OVERHEAD, SITE_PACKAGE.too_large()),
    Limit("POST", "/appliance/api/certificates/import", P12.limit + FORM_OVERHEAD, P12.too_large()),
    Limit("POST", "/appliance/certificates/import", P12.limit + FORM_OVERHEAD, P12.too_large()),
    Limit("POST", "/appliance/api/config/import", CONFIG_IMPORT_MAX),
    Limit("POST", "/appliance/api/readiness/copies", COPIES.limit + FORM_OVERHEAD, COPIES.too_large()),
    Limit("POST", "/appliance/status/readiness/copies", COPIES.limit + FORM_OVERHEAD, COPIES.too_large()),
    Limit("POST", "/appliance/maintenance/config-import", CONFIG_IMPORT_MAX),
    Limit("PUT", "/api/config/branding/logo", LOGO.limit, LOGO.too_large()),
    # streamed to disk: the file store's max_upload_bytes, recordings and backups bounded as they are written
    Limit("PUT", "/api/files/{name}", STREAMED),
    Limit("POST", "/login/files", STREAMED),
    Limit("PUT", "/api/command/sessions/{lsid}/recordings/{kind}", STREAMED),
    Limit("POST", "/api/backup/verify", STREAMED),
    Limit("POST", "/api/restore", STREAMED),
    Limit("POST", "/login/software/restore", STREAMED),
    Limit("POST", "/appliance/api/drills/upload", STREAMED),
])
