"""Alembic migrations of the site database. Each release in the catalog names
the revision it runs (``Release.schema_revision``)."""
