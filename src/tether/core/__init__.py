"""Core building blocks shared by every domain package: data-directory layout,
errors, the secret box, password hashing, the release catalog, validation,
audit logging and the SQLite/SQLAlchemy helpers. Nothing here knows about HTTP
or the CLI."""
