"""Shared fixtures: every test works in its own folder, with no user environment leaking in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MODELBOARD_FILE from the developer's shell, a fixed actor, no colour."""
    monkeypatch.delenv("MODELBOARD_FILE", raising=False)
    monkeypatch.delenv("MODELBOARD_CATALOG", raising=False)
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
