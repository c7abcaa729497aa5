"""The site-data part of the JSON API (``/api``, SITE-01/02): user details
and editing, every configuration kind (``/config/<kind>``), settings
sections (``/config/settings/<section>``), the branding logo and the file
store. Logged history and session ingest are in ``site_history_api``.

The routes parse and call the site's actions (``tether.site.actions``), the
same functions the /login pages (``site_data_pages``) call: each checks its
permission first (403, nothing changes), then the edition, validates, writes
and audits (names and ids only, never secrets)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import FileResponse, Response

from tether.core.shapes import deleted
from tether.core.validate import Natural
from tether.site import resources as R
from tether.site import sections as S
from tether.site.actions import accounts, config, files
from tether.site.authn import ProviderTest
from tether.site.filestore import NAME_RULE, Logo, StoredFile, check_name
from tether.site.users import UserDetail, UserUpdate

from . import site_history_api
from .auth import client_ip
from .bodies import body_of, file_reply, reply
from .site_deps import Caller, send, site_of
from .uploads import LOGO

router = APIRouter()
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"
NameParam = Annotated[str, Path(pattern=NAME_RE, description="the entry's name")]
FileParam = Annotated[str, Path(description=f"the file's name in the store ({NAME_RULE}); percent-encoded")]
UserParam = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
JsonBody = Annotated[dict[str, Any], Body()]


# --- routes -------------------------------------------------------------------------------
@router.get("/users/{username}", summary="A user's details: teams, enabled, last login", **reply(UserDetail))
def get_user(request: Request, username: UserParam, p: Caller) -> dict:
    return accounts.user_detail(site_of(request), p, username)


@router.put("/users/{username}", summary="Edit a user: name, e-mail, enabled, permissions, teams",
            openapi_extra=body_of(UserUpdate), **reply(UserDetail))
def put_user(request: Request, username: UserParam, body: JsonBody, p: Caller) -> dict:
    return accounts.update_user(site_of(request), p, client_ip(request), username, body)


@router.delete("/users/{username}", summary="Delete a user (not yourself; not one still referenced)",
               **reply(deleted("username")))
def delete_user(request: Request, username: UserParam, p: Caller) -> dict:
    return accounts.delete_user(site_of(request), p, client_ip(request), username)


def _kind_routes(slug: str, k: R.Kind) -> None:
    title = k.title.lower()
    key_param = Annotated[str, Path(pattern=NAME_RE if k.key == "name" and slug != "languages"
                                    else r"^[a-z]{2,3}(-[A-Z]{2})?$")]

    @router.get(f"/config/{slug}", summary=f"List {title}", name=f"list_{slug}", **reply(list[k.entry]))
    def list_(request: Request, p: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
              offset: Natural = 0) -> list[dict]:
        return config.list_entries(site_of(request), p, slug, limit, offset)

    @router.post(f"/config/{slug}", status_code=201, summary=f"Create an entry of {title}", name=f"create_{slug}",
                 openapi_extra=body_of(k.model), **reply(k.entry, 201))
    def create_(request: Request, body: JsonBody, p: Caller) -> dict:
        return config.create_entry(site_of(request), p, client_ip(request), slug, body)

    @router.get(f"/config/{slug}/{{name}}", summary=f"Read one entry of {title}", name=f"get_{slug}",
                **reply(k.entry))
    def get_(request: Request, name: key_param, p: Caller) -> dict:
        return config.get_entry(site_of(request), p, slug, name)

    @router.put(f"/config/{slug}/{{name}}", summary=f"Replace one entry of {title} (omitted secrets are kept)",
                name=f"put_{slug}", openapi_extra=body_of(k.model), **reply(k.entry))
    def put_(request: Request, name: key_param, body: JsonBody, p: Caller) -> dict:
        return config.update_entry(site_of(request), p, client_ip(request), slug, name, body)

    @router.delete(f"/config/{slug}/{{name}}", summary=f"Delete one entry of {title} (refused while in use)",
                   name=f"delete_{slug}", **reply(deleted(k.key)))
    def delete_(request: Request, name: key_param, p: Caller) -> dict:
        return config.delete_entry(site_of(request), p, client_ip(request), slug, name)


def _section_routes(slug: str, s: S.Section) -> None:
    @router.get(f"/config/settings/{slug}", summary=f"Read: {s.title}", name=f"get_settings_{slug}",
                **reply(s.public))
    def get_(request: Request, p: Caller) -> dict:
        return config.read_section(site_of(request), p, slug)

    @router.put(f"/config/settings/{slug}", summary=f"Replace: {s.title} (omitted secrets are kept)",
                name=f"put_settings_{slug}", openapi_extra=body_of(s.model), **reply(s.public))
    def put_(request: Request, body: JsonBody, p: Caller) -> dict:
        return config.put_section(site_of(request), p, client_ip(request), slug, body)


for _slug, _k in R.KINDS.items():
    _kind_routes(_slug, _k)
for _slug, _s in S.SECTIONS.items():
    _section_routes(_slug, _s)


@router.post("/config/security-providers/{name}/test", name="test_security_provider",
             summary="Try a username and password against one security provider; each step is reported",
             **reply(ProviderTest))
def test_provider(request: Request, name: Annotated[str, Path(pattern=NAME_RE)], body: JsonBody, p: Caller) -> dict:
    return config.test_provider(site_of(request), p, client_ip(request), name, body)


@router.get("/config/branding/logo", summary="The client branding logo (Remote Support)",
            response_class=Response, **file_reply("image/png", "image/jpeg", "image/gif", description="The logo"))
def get_logo(request: Request, p: Caller) -> Response:
    data, ctype = config.logo(site_of(request), p)
    return Response(data, media_type=ctype)


@router.put("/config/branding/logo", summary="Upload the client branding logo: PNG, JPEG or GIF, raw body",
            **reply(Logo))
async def put_logo(request: Request, p: Caller) -> dict:
    site = site_of(request)
    config.section(site, p, "branding", write=True)  # 403 before the body is read
    return config.put_logo(site, p, client_ip(request), await LOGO.read_body(request))


@router.get("/files", summary="List the file store (Remote Support)", **reply(list[StoredFile]))
def list_files(request: Request, p: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
               offset: Natural = 0) -> list[dict]:
    return files.list_files(site_of(request), p, limit, offset)


@router.put("/files/{name}", summary="Upload a file (raw body, streamed to the file store: disk or bucket; replaces a file of that name)",
            **reply(StoredFile))
async def put_file(request: Request, name: FileParam, p: Caller,
                   description: Annotated[str, Query(max_length=512)] = "") -> dict:
    site = site_of(request)
    store = files.store(site, p, write=True)
    check_name(name)
    cl = request.headers.get("content-length")
    limit = store.check_size(int(cl) if cl and cl.isdigit() else None)
    sha, size = await store.blobs.put_async(request.stream(), limit)
    return files.add_file(site, p, client_ip(request), name, sha, size, request.headers.get("content-type", ""),
                          description)


@router.get("/files/{name}", summary="Download a file from the store", response_class=FileResponse,
            **file_reply("*/*", description="The file, with the media type it was uploaded with"))
def get_file(request: Request, name: FileParam, p: Caller) -> FileResponse:
    return send(files.download(site_of(request), p, name), request)


@router.delete("/files/{name}", summary="Delete a file from the store", **reply(deleted("name")))
def delete_file(request: Request, name: FileParam, p: Caller) -> dict:
    return files.delete_file(site_of(request), p, client_ip(request), name)


router.include_router(site_history_api.router)
