"""Site-wide settings a /login administrator configures (a first slice of
SITE-01's security settings; the site issue extends it). Stored as one JSON
document in ``site_settings`` under the key ``site``."""

from __future__ import annotations

import time
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from tether.core.validate import parse_model

from .tables import site_settings


class SiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: Annotated[str, Field(min_length=1, max_length=128)] = "Support"
    session_timeout_minutes: Annotated[int, Field(ge=5, le=1440)] = 480
    support_contact_email: Annotated[str | None, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = None
    default_language: Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "en-US"


def get(engine: sa.Engine) -> SiteSettings:
    with engine.connect() as c:
        row = c.execute(sa.select(site_settings.c.value).where(site_settings.c.key == "site")).first()
    return SiteSettings.model_validate(row[0] if row else {})


def put(engine: sa.Engine, data: dict) -> SiteSettings:
    model = parse_model(SiteSettings, data)
    with engine.begin() as c:
        exists = c.execute(sa.select(site_settings.c.key).where(site_settings.c.key == "site")).first()
        values = dict(value=model.model_dump(), updated_at=time.time())
        if exists:
            c.execute(site_settings.update().where(site_settings.c.key == "site").values(**values))
        else:
            c.execute(site_settings.insert().values(key="site", **values))
    return model
