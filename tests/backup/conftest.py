"""The backup tests run on the site database backend of the run, as the site
tests do (tests/site/conftest.py): SQLite by default; with
``TETHER_TEST_DB=postgresql`` every appliance's site lives on a real
PostgreSQL server and only the tests marked ``pg`` run (scripts/test's
PostgreSQL pass: backup, restore, crash injection, tampering, full disks)."""

from tests.site.conftest import (make_appliance, pg_server, pytest_collection_modifyitems,  # noqa: F401
                                 pytest_configure, site_db)
