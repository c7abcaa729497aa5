"""The certificate store in appliance.db: certificates with their chains and
private keys sealed by the appliance's secret box (SEC-03)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tether.appliance.store import certificates
from tether.core.errors import NotFound
from tether.core.secretbox import SecretBox

KEY_PURPOSE = "certificate-key"


class CertStore:
    def __init__(self, engine: sa.Engine, box: SecretBox):
        self.engine = engine
        self.box = box

    def add(self, name: str, cert_pem: str, key_der: bytes | None, chain_pem: str = "", builtin: bool = False,
            conn: sa.Connection | None = None) -> int:
        values = dict(name=name, builtin=builtin, cert_pem=cert_pem, chain_pem=chain_pem,
                      key_sealed=self.box.seal(key_der, KEY_PURPOSE) if key_der else None, created_at=time.time())
        if conn is not None:
            return conn.execute(certificates.insert().values(**values)).inserted_primary_key[0]
        with self.engine.begin() as c:
            return c.execute(certificates.insert().values(**values)).inserted_primary_key[0]

    def get(self, cert_id: int) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(certificates).where(certificates.c.id == cert_id)).mappings().first()
        if row is None:
            raise NotFound(f"no certificate with id {cert_id}")
        return dict(row)

    def builtin(self) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(certificates).where(certificates.c.builtin.is_(True))).mappings().first()
        if row is None:
            raise NotFound("the built-in certificate is missing")
        return dict(row)

    def list(self) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(sa.select(certificates).order_by(certificates.c.id)).mappings()]

    def private_key_der(self, row: dict) -> bytes | None:
        return self.box.unseal(row["key_sealed"], KEY_PURPOSE) if row.get("key_sealed") else None
