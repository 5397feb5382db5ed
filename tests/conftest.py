"""Shared fixtures: every test works in its own folder, with no user environment leaking in."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _no_preferences() -> Iterator[Path]:
    """Where no preferences file is, for every user a test runs as (a folder anyone can
    look into, so another user finds it missing rather than forbidden)."""
    folder = Path(tempfile.mkdtemp(prefix="modelboard-no-preferences-"))
    folder.chmod(0o711)
    yield folder / "config.toml"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, _no_preferences: Path) -> None:
    """No MODELBOARD_FILE or preferences from the developer's shell, a fixed actor, no colour."""
    monkeypatch.delenv("MODELBOARD_FILE", raising=False)
    monkeypatch.delenv("MODELBOARD_CATALOG", raising=False)
    monkeypatch.setenv("MODELBOARD_CONFIG", str(_no_preferences))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setenv("LOGNAME", "tester")


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    """Where a test's selections file lives (not created)."""
    return tmp_path / "config" / "model_selections.json"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
