"""The desk tests' shared desk: one ``tether-desk serve`` per module (the
process and the ``desk_factory`` that starts it are in tests/desk/process.py
and tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def desk(desk_factory):
    return desk_factory()
