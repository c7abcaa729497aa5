"""``tether-vendor``: the vendor's tools — make a signing key and build signed
site packages (SITE-04)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tether.site import package

from .output import JsonOpt, emit, errors

app = typer.Typer(help="Vendor tools: signing keys and site packages.", no_args_is_help=True)
pkg_app = typer.Typer(help="Site packages.", no_args_is_help=True)
app.add_typer(pkg_app, name="site-package")


@app.command("keygen")
def keygen(out: Annotated[Path, typer.Option(help="Directory for vendor.key and vendor.pub")], as_json: JsonOpt = False):
    """Create an Ed25519 vendor signing key (vendor.key, mode 0600) and its public key (vendor.pub)."""
    with errors():
        out.mkdir(parents=True, exist_ok=True)
        key_path, pub_path = out / "vendor.key", out / "vendor.pub"
        if key_path.exists():
            raise FileExistsError(f"{key_path} exists; refusing to overwrite a signing key")
        priv, pub = package.generate_vendor_key()
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(priv)
        pub_path.write_bytes(pub)
    emit({"key": str(key_path), "public_key": str(pub_path)}, as_json,
         f"Signing key: {key_path}\nPublic key:  {pub_path}")


@pkg_app.command("build")
def build(key: Annotated[Path, typer.Option(help="Vendor signing key (PEM)")],
          site_name: Annotated[str, typer.Option(help="Site name (lower case, digits, -)")],
          edition: Annotated[str, typer.Option(help="remote-support or privileged-remote-access")],
          version: Annotated[str, typer.Option(help="Product version X.Y.Z")],
          out: Annotated[Path, typer.Option("-o", "--out", help="Output file (.tsp)")],
          as_json: JsonOpt = False):
    """Build and sign a site package."""
    with errors():
        data = package.build(package.load_private_key(key.read_bytes()), site_name, edition, version)
        out.write_bytes(data)
    emit({"file": str(out), "site_name": site_name, "edition": edition, "version": version}, as_json,
         f"Built {out}: site {site_name}, {edition}, version {version}")
