"""Fixtures of the core tests that need real other users (see hostile_support)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_support import Users, make_users


@pytest.fixture(scope="session")
def users() -> Users:
    return make_users()


@pytest.fixture
def shared(users: Users) -> Iterator[Path]:
    """A folder every test user can reach (pytest's own tmp folders are 0700)."""
    top = Path(tempfile.mkdtemp(prefix="mb-hostile-", dir="/tmp"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)
