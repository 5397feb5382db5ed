"""The ``modelboard`` fixture: the command as a real process, on the test's own file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Modelboard


@pytest.fixture
def modelboard(data_file: Path) -> Modelboard:
    return Modelboard(data_file)
