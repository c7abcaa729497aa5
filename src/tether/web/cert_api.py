"""The /appliance certificate API (``/appliance/api/certificates...``), the
JSON twin of /appliance Security > Certificates: listing, self-signed
generation, key + CSR requests and the CA's answer, .p12 import and export,
address assignment and deletion (CERT-01..06). Every route parses, calls the
one ``CertificateService`` function and presents; the rules live there.
Secrets (.p12 passwords, export passphrases) travel in request bodies only,
never in the URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tether.certs.generate import DEFAULT_KEY_TYPE, MAX_ANSWER_BYTES, SELF_SIGNED_DAYS
from tether.certs.pkcs12 import MAX_P12_BYTES
from tether.certs.service import Assigned, Assignments, Certificate, CertificateRequest, Listing, safe_filename
from tether.core.errors import Invalid
from tether.core.validate import Bool, Id, Int

from . import auth
from .auth import Principal, appliance_of, client_ip
from .bodies import Ok, file_reply, reply


async def _admin(request: Request) -> Principal:
    return await auth.appliance_principal(request)


Admin = Annotated[Principal, Depends(_admin)]
router = APIRouter(tags=["certificates"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelfSignedBody(_Body):
    name: str
    fqdn: str | None = Field(None, description="Default: the appliance's host name")
    alt_names: list[str] = []
    key_type: str = DEFAULT_KEY_TYPE
    days: Int = SELF_SIGNED_DAYS


class RequestBody(_Body):
    name: str
    fqdn: str | None = Field(None, description="Default: the appliance's host name")
    alt_names: list[str] = []
    key_type: str = DEFAULT_KEY_TYPE
    organization: str | None = None


class AnswerBody(_Body):
    certificate: str = Field(description="The CA's answer: PEM, may hold the chain too")
    chain: str = Field("", description="Intermediate(s) and root, PEM, if sent separately")
    name: str | None = Field(None, description="Default: the request's name")


class ExportBody(_Body):
    passphrase: str = Field(description="Protects the .p12 (8 characters at least)")
    include_certificate: Bool = True
    include_key: Bool = True
    include_chain: Bool = True


class AssignBody(_Body):
    id: Id = Field(description="The certificate to present; the built-in one removes the assignment")


def download(data: bytes, filename: str, media_type: str) -> Response:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


async def read_limited(file: UploadFile | None, limit: int, what: str) -> bytes:
    data = await file.read(limit + 1) if file is not None else b""
    if not data:
        raise Invalid(f"upload the {what}", field="file")
    return data


@router.get("/certificates", summary="Certificates, pending requests, assignments and assignable addresses",
             **reply(Listing))
def list_certificates(request: Request, _p: Admin) -> dict:
    return appliance_of(request).certificates.listing()


@router.get("/certificates/{cert_id}", summary="One certificate, described as in the listing",
             **reply(Certificate))
def get_certificate(request: Request, cert_id: Id, _p: Admin) -> dict:
    return appliance_of(request).certificates.get(cert_id)


@router.post("/certificates/self-signed", status_code=201, summary="Generate a self-signed certificate",
             **reply(Certificate, 201))
def post_self_signed(request: Request, body: SelfSignedBody, p: Admin) -> dict:
    return appliance_of(request).certificates.generate(
        p.name, client_ip(request), name=body.name, fqdn=body.fqdn, alt_names=body.alt_names,
        key_type=body.key_type, days=body.days)


@router.post("/certificates/import", status_code=201, summary="Import a .p12 (certificate, key, chain)",
             **reply(Certificate, 201))
async def post_import(request: Request, p: Admin, file: UploadFile, name: Annotated[str, Form()],
                      password: Annotated[str, Form()] = "") -> dict:
    from starlette.concurrency import run_in_threadpool

    data = await read_limited(file, MAX_P12_BYTES, ".p12 file")
    return await run_in_threadpool(appliance_of(request).certificates.import_p12, p.name, client_ip(request),
                                   data, password, name)


@router.post("/certificates/{cert_id}/export", summary="Export as a passphrase-protected .p12",
             response_class=Response, **file_reply("application/x-pkcs12", description="The .p12"))
def post_export(request: Request, cert_id: Id, body: ExportBody, p: Admin) -> Response:
    filename, data = appliance_of(request).certificates.export_p12(
        p.name, client_ip(request), cert_id, body.passphrase, include_cert=body.include_certificate,
        include_key=body.include_key, include_chain=body.include_chain)
    return download(data, filename, "application/x-pkcs12")


@router.delete("/certificates/{cert_id}", summary="Delete a certificate (not the built-in one, not an assigned one)",
             **reply(Ok))
def delete_certificate(request: Request, cert_id: Id, p: Admin) -> dict:
    appliance_of(request).certificates.delete(p.name, client_ip(request), cert_id)
    return {"ok": True}


@router.get("/certificate-requests", summary="Pending key + CSR requests",
             **reply(list[CertificateRequest]))
def list_requests(request: Request, _p: Admin) -> list[dict]:
    return appliance_of(request).certificates.listing()["requests"]


@router.post("/certificate-requests", status_code=201, summary="Generate a key and a CSR for a CA",
             **reply(CertificateRequest, 201))
def post_request(request: Request, body: RequestBody, p: Admin) -> dict:
    return appliance_of(request).certificates.request(
        p.name, client_ip(request), name=body.name, fqdn=body.fqdn, alt_names=body.alt_names,
        key_type=body.key_type, organization=body.organization)


@router.get("/certificate-requests/{request_id}/csr", summary="Download a pending request's CSR (PEM)",
            response_class=Response, **file_reply("application/pkcs10", description="The CSR (PEM)"))
def get_csr(request: Request, request_id: Id, _p: Admin) -> Response:
    req = appliance_of(request).certificates.csr(request_id)
    return download(req["csr_pem"].encode(), safe_filename(req["name"], f"request-{request_id}", ".csr"),
                        "application/pkcs10")


@router.delete("/certificate-requests/{request_id}", summary="Drop a pending request and its key",
             **reply(Ok))
def delete_request(request: Request, request_id: Id, p: Admin) -> dict:
    appliance_of(request).certificates.delete_request(p.name, client_ip(request), request_id)
    return {"ok": True}


@router.post("/certificate-requests/answer", status_code=201,
             summary="Install the CA's answer (with its chain), matched to its pending key",
             **reply(Certificate, 201))
def post_answer(request: Request, body: AnswerBody, p: Admin) -> dict:
    if len(body.certificate) + len(body.chain) > 2 * MAX_ANSWER_BYTES:
        raise Invalid("the answer is larger than 2 MiB", field="certificate")
    return appliance_of(request).certificates.install_answer(p.name, client_ip(request), body.certificate,
                                                             body.chain, body.name)


@router.get("/certificate-assignments", summary="Which certificate each address presents",
             **reply(Assignments))
def get_assignments(request: Request, _p: Admin) -> dict:
    listing = appliance_of(request).certificates.listing()
    return {"assignments": listing["assignments"], "addresses": listing["addresses"]}


@router.put("/certificate-assignments/{address}", summary="Present a certificate on an address (no restart)",
             **reply(Assigned))
def put_assignment(request: Request, address: str, body: AssignBody, p: Admin) -> dict:
    return appliance_of(request).certificates.assign(p.name, client_ip(request), body.id, address)
