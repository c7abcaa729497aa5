"""The /login site: its tables and Alembic migrations, site packages and their
installation, users and their logins, API accounts and bearer tokens, and
the permissions every /login page and /api endpoint checks."""
