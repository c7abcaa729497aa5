"""Alembic environment: always run with a connection handed in by
``tether.site.schema`` (never from an ini file's URL)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
