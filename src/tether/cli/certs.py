"""``tether cert ...``: the certificates of a running appliance (CERT-01..06)
through /appliance/api: list, generate, csr, install-answer, export, import,
assign, delete. Passphrases and passwords are read from files (first line,
as ``openssl -passin file:`` reads them), never from the command line; they
travel in request bodies only. Files written (.p12, CSR) are created 0600.
The runbook is docs/operations.md "Certificates: backup and recovery"."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tether.certs.classify import summary_lines

from .appliance import AgreeOpt, admin_remote
from .output import JsonOpt, emit, errors, fail
from .remote import CaOpt, PasswordOpt, PinOpt, UrlOpt, UserOpt

cert_app = typer.Typer(help="Certificates: list, generate, CSR, install the CA's answer, export/import .p12, assign.",
                       no_args_is_help=True)

IdOpt = Annotated[int, typer.Option("--id", help="Certificate id (see `tether cert list`)")]
NameOpt = Annotated[str, typer.Option("--name", help="A name for the certificate, unique on the appliance")]
FqdnOpt = Annotated[str | None, typer.Option("--fqdn", help="The name clients use (default: the appliance host name)")]
AltOpt = Annotated[list[str] | None, typer.Option("--alt-name", help="More DNS names or IP addresses (repeatable)")]
KeyTypeOpt = Annotated[str, typer.Option("--key-type", help="ecdsa-p256, rsa-2048 or rsa-3072")]


def _read_secret(path: Path) -> str:
    text = path.read_text()
    return text.splitlines()[0] if text else ""


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _listing_text(listing: dict) -> str:
    lines: list[str] = []
    for desc in listing["certificates"]:
        lines += summary_lines(desc) + [""]
    for req in listing["requests"]:
        lines.append(f"Pending request {req['name']} (id {req['id']}): {req['common_name']}, {req['key_type']}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.add_typer(cert_app, name="cert")

    @cert_app.command("list")
    def list_cmd(url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                 password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Certificates with Issued To/By, names, validity, fingerprint, private key, addresses, warnings."""
        with errors():
            listing = admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call(
                "GET", "/appliance/api/certificates")
        emit(listing, as_json, _listing_text(listing))

    @cert_app.command("generate")
    def generate_cmd(name: NameOpt, fqdn: FqdnOpt = None, alt_name: AltOpt = None, key_type: KeyTypeOpt = "ecdsa-p256",
                     days: Annotated[int, typer.Option(help="Validity in days")] = 365,
                     url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                     password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Generate a self-signed certificate (temporary use) for the appliance's FQDN."""
        with errors():
            desc = admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call(
                "POST", "/appliance/api/certificates/self-signed",
                json={"name": name, "fqdn": fqdn, "alt_names": alt_name or [], "key_type": key_type, "days": days})
        emit(desc, as_json, "\n".join(summary_lines(desc)))

    @cert_app.command("csr")
    def csr_cmd(name: NameOpt, fqdn: FqdnOpt = None, alt_name: AltOpt = None, key_type: KeyTypeOpt = "ecdsa-p256",
                organization: Annotated[str | None, typer.Option(help="Organization in the subject")] = None,
                out: Annotated[Path | None, typer.Option("--out", help="Write the CSR (PEM) here")] = None,
                url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Generate a key (kept on the appliance) and a CSR to give to a CA."""
        with errors():
            req = admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call(
                "POST", "/appliance/api/certificate-requests",
                json={"name": name, "fqdn": fqdn, "alt_names": alt_name or [], "key_type": key_type,
                      "organization": organization})
            if out is not None:
                _write_private(out, req["csr_pem"].encode())
        emit(req, as_json, f"Pending request {req['name']} (id {req['id']}) for {req['common_name']}"
                           + (f"; CSR written to {out}" if out else f"\n{req['csr_pem']}"))

    @cert_app.command("install-answer")
    def install_answer_cmd(file: Annotated[Path, typer.Option("--file", help="The CA's answer (PEM)")],
                           chain: Annotated[Path | None, typer.Option(
                               "--chain", help="Intermediate(s) and root (PEM), if separate")] = None,
                           name: Annotated[str | None, typer.Option(help="Default: the request's name")] = None,
                           url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                           user: UserOpt = "admin", password: PasswordOpt = None,
                           accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Install the CA's answer to a pending request, with its chain; an answer for another key is refused."""
        with errors():
            body = {"certificate": file.read_text(errors="replace"),
                    "chain": chain.read_text(errors="replace") if chain else "", "name": name}
            desc = admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call(
                "POST", "/appliance/api/certificate-requests/answer", json=body)
        emit(desc, as_json, "\n".join(summary_lines(desc)))

    @cert_app.command("export")
    def export_cmd(cert_id: IdOpt, out: Annotated[Path, typer.Option("--out", help="The .p12 file to write")],
                   passphrase_file: Annotated[Path, typer.Option("--passphrase-file",
                                                                 help="File holding the passphrase (first line)")],
                   no_key: Annotated[bool, typer.Option("--no-key", help="Leave the private key out")] = False,
                   no_chain: Annotated[bool, typer.Option("--no-chain", help="Leave the chain out")] = False,
                   no_cert: Annotated[bool, typer.Option("--no-cert", help="Leave the certificate out")] = False,
                   url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                   password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Export a certificate (key and chain by default) as a passphrase-protected .p12."""
        with errors():
            body = {"passphrase": _read_secret(passphrase_file), "include_certificate": not no_cert,
                    "include_key": not no_key, "include_chain": not no_chain}
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            data = r.request("POST", f"/appliance/api/certificates/{cert_id}/export", json=body).content
            _write_private(out, data)
        emit({"id": cert_id, "out": str(out), "bytes": len(data), "certificate": not no_cert,
              "private_key": not no_key, "chain": not no_chain}, as_json,
             f"Certificate {cert_id} exported to {out} ({len(data)} bytes)")

    @cert_app.command("import")
    def import_cmd(file: Annotated[Path, typer.Option("--file", help="The .p12/.pfx file")],
                   passphrase_file: Annotated[Path, typer.Option("--passphrase-file",
                                                                 help="File holding its password (first line)")],
                   name: NameOpt, url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None,
                   user: UserOpt = "admin", password: PasswordOpt = None, accept_agreement: AgreeOpt = False,
                   as_json: JsonOpt = False):
        """Import a .p12 (certificate, key, chain); a wrong password or damaged file changes nothing."""
        with errors():
            secret = _read_secret(passphrase_file)
            r = admin_remote(url, cacert, pin_cert, user, password, accept_agreement)
            with file.open("rb") as f:
                desc = r.call("POST", "/appliance/api/certificates/import", files={"file": (file.name, f)},
                              data={"password": secret, "name": name})
        emit(desc, as_json, f"Imported certificate id {desc['id']}\n" + "\n".join(summary_lines(desc)))

    @cert_app.command("assign")
    def assign_cmd(cert_id: IdOpt,
                   address: Annotated[str, typer.Option("--address", help="One of the appliance's IP addresses")],
                   url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                   password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Present a certificate on an address from the next connection on (the built-in id undoes it)."""
        with errors():
            res = admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call(
                "PUT", f"/appliance/api/certificate-assignments/{address}", json={"id": cert_id})
        emit(res, as_json, f"{res['address']} now presents {res['name']!r} (id {res['id']})")

    @cert_app.command("delete")
    def delete_cmd(cert_id: Annotated[int | None, typer.Option("--id", help="Certificate id")] = None,
                   request_id: Annotated[int | None, typer.Option("--request-id", help="Pending request id")] = None,
                   url: UrlOpt = None, cacert: CaOpt = None, pin_cert: PinOpt = None, user: UserOpt = "admin",
                   password: PasswordOpt = None, accept_agreement: AgreeOpt = False, as_json: JsonOpt = False):
        """Delete a certificate (not the built-in one, not one assigned) or a pending request."""
        if (cert_id is None) == (request_id is None):
            fail("give exactly one of --id and --request-id", 2)
        path = (f"/appliance/api/certificates/{cert_id}" if cert_id is not None
                else f"/appliance/api/certificate-requests/{request_id}")
        with errors():
            admin_remote(url, cacert, pin_cert, user, password, accept_agreement).call("DELETE", path)
        what = f"certificate {cert_id}" if cert_id is not None else f"request {request_id}"
        emit({"ok": True, "deleted": what}, as_json, f"Deleted {what}")
