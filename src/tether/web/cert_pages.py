"""The /appliance Security > Certificates HTML page
(``/appliance/certificates``) and its forms: import a .p12, generate a
self-signed certificate, make a key + CSR and download the CSR, install the
CA's answer, assign a certificate to an address, export a .p12, delete.
Each form calls the same ``CertificateService`` function as its
/appliance/api twin (cert_api.py); errors are shown on the page with the
status of the error class."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tether.certs.generate import DEFAULT_KEY_TYPE, KEY_TYPES, MAX_ANSWER_BYTES, SELF_SIGNED_DAYS
from tether.certs.pkcs12 import MAX_P12_BYTES
from tether.certs.service import safe_filename
from tether.core.errors import Invalid, NotFound, TetherError
from tether.core.validate import Id, as_id

from . import forms
from .appliance_pages import FACE, _page
from .auth import appliance_of, client_ip
from .cert_api import download
from .pages import render

router = APIRouter()
TITLE = "Security › Certificates"
TEMPLATE = "appliance/certificates.html"


def _show(request: Request, p, *, status: int = 200, error: str | None = None, notice: str | None = None,
          csr: dict | None = None, f: dict | None = None) -> Response:
    app = appliance_of(request)
    return render(request, FACE, TEMPLATE, TITLE, status=status, csrf_token=p.csrf_token,
                  listing=app.certificates.listing(), hostname=app.hostname(), key_types=KEY_TYPES,
                  default_key_type=DEFAULT_KEY_TYPE, default_days=SELF_SIGNED_DAYS, error=error, notice=notice,
                  csr=csr, f=f or {})


async def _upload(form, name: str, limit: int) -> bytes:
    upload = form.get(name)
    return await upload.read(limit + 1) if hasattr(upload, "read") else b""


def _action(path: str, run):
    """A POST form at ``path``: ``run(request, principal, form)`` returns a
    notice (str), a CSR to show (dict) or a response; a domain error
    re-shows the page with the message and the form's values."""

    async def post(request: Request):
        async def h(p):
            form = await request.form()
            try:
                ids = {k: _path_int(v) for k, v in request.path_params.items()}
                result = await run(request, p, form, **ids)
            except TetherError as exc:
                kept = {k: v for k, v in form.items() if isinstance(v, str) and "pass" not in k}
                message = exc.message + (f" — {exc.hint}" if exc.hint else "")
                return _show(request, p, status=exc.status, error=message, f=kept)
            if isinstance(result, Response):
                return result
            if isinstance(result, dict):
                return _show(request, p, csr=result, notice=f"Request {result['name']!r} created: give the CSR "
                                                             "below to your certificate authority.")
            return _show(request, p, notice=result)
        return await _page(request, h)

    router.add_api_route(path, post, methods=["POST"])


@router.get("/appliance/certificates")
async def certificates_page(request: Request):
    async def h(p):
        return _show(request, p)
    return await _page(request, h)


@router.get("/appliance/certificates/requests/{request_id}/csr")
async def csr_download(request: Request, request_id: Id):
    async def h(p):
        req = appliance_of(request).certificates.csr(request_id)
        return download(req["csr_pem"].encode(), safe_filename(req["name"], f"request-{request_id}", ".csr"),
                        "application/pkcs10")
    return await _page(request, h)


async def _import(request, p, form):
    data = await _upload(form, "file", MAX_P12_BYTES)
    if not data:
        raise Invalid("choose the .p12 file to import", field="file")
    desc = await run_in_threadpool(appliance_of(request).certificates.import_p12, p.name, client_ip(request), data,
                                   str(form.get("password") or ""), str(form.get("name") or ""))
    return f"Certificate {desc['name']!r} imported (id {desc['id']})."


async def _generate(request, p, form):
    desc = await run_in_threadpool(
        appliance_of(request).certificates.generate, p.name, client_ip(request), name=str(form.get("name") or ""),
        fqdn=str(form.get("fqdn") or ""), alt_names=forms.lines(form.get("alt_names")),
        key_type=str(form.get("key_type") or DEFAULT_KEY_TYPE), days=forms.integer(form, "days"))
    return f"Self-signed certificate {desc['name']!r} generated (id {desc['id']})."


async def _request(request, p, form):
    return await run_in_threadpool(
        appliance_of(request).certificates.request, p.name, client_ip(request), name=str(form.get("name") or ""),
        fqdn=str(form.get("fqdn") or ""), alt_names=forms.lines(form.get("alt_names")),
        key_type=str(form.get("key_type") or DEFAULT_KEY_TYPE),
        organization=str(form.get("organization") or "").strip() or None)


async def _answer(request, p, form):
    answer = await _upload(form, "file", MAX_ANSWER_BYTES) or str(form.get("certificate") or "").encode()
    chain = await _upload(form, "chain_file", MAX_ANSWER_BYTES) or str(form.get("chain") or "").encode()
    if not answer.strip():
        raise Invalid("choose the CA's answer file or paste it", field="certificate")
    desc = appliance_of(request).certificates.install_answer(p.name, client_ip(request), answer, chain,
                                                            str(form.get("name") or "").strip() or None)
    return f"Certificate {desc['name']!r} installed (id {desc['id']})."


def _path_int(value: str) -> int:
    try:
        return as_id(value)
    except ValueError:
        raise NotFound(f"no certificate or request {value!r}") from None


def _form_id(form, name: str = "id") -> int:
    try:
        return as_id(form.get(name))
    except ValueError:
        raise Invalid("choose a certificate", field=name) from None


async def _assign(request, p, form):
    result = appliance_of(request).certificates.assign(p.name, client_ip(request), _form_id(form),
                                                       str(form.get("address") or ""))
    return f"{result['address']} now presents {result['name']!r}."


async def _export(request, p, form, cert_id: int):
    filename, data = await run_in_threadpool(
        appliance_of(request).certificates.export_p12, p.name, client_ip(request), cert_id,
        str(form.get("passphrase") or ""), include_cert=forms.checkbox(form, "include_certificate"),
        include_key=forms.checkbox(form, "include_key"), include_chain=forms.checkbox(form, "include_chain"))
    return download(data, filename, "application/x-pkcs12")


async def _delete(request, p, form, cert_id: int):
    appliance_of(request).certificates.delete(p.name, client_ip(request), cert_id)
    return f"Certificate {cert_id} deleted."


async def _delete_request(request, p, form, request_id: int):
    appliance_of(request).certificates.delete_request(p.name, client_ip(request), request_id)
    return f"Request {request_id} deleted."


_action("/appliance/certificates/import", _import)
_action("/appliance/certificates/generate", _generate)
_action("/appliance/certificates/requests", _request)
_action("/appliance/certificates/answer", _answer)
_action("/appliance/certificates/assign", _assign)
_action("/appliance/certificates/{cert_id}/export", _export)
_action("/appliance/certificates/{cert_id}/delete", _delete)
_action("/appliance/certificates/requests/{request_id}/delete", _delete_request)
