"""Fixtures for the editor's tests: fixed files, a fixed clock, steady cursors."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tui_helpers import FIXTURES, fixed_clock

from modelboard.core import SelectionStore, open_store
from modelboard.tui import ModelboardApp


@pytest.fixture
def seeded_file(data_file: Path) -> Path:
    """The fixture selections (and their history) in a fresh folder."""
    data_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "selections.json", data_file)
    shutil.copy(FIXTURES / "model_selections.history.jsonl",
                data_file.with_name("model_selections.history.jsonl"))
    return data_file


@pytest.fixture
def open_app() -> Iterator[Callable[..., ModelboardApp]]:
    """Build an app over a store on ``path``; stores are closed after the test."""
    stores: list[SelectionStore] = []

    def build(path: Path, *, read_only: bool = False, watch: bool = False,
              read_only_reason: str | None = None, actor: str = "tester@host") -> ModelboardApp:
        # As the editor opens it: it shows the fleet, it does not report to it.
        store = open_store(path, read_only=read_only, actor=actor, report=False)
        stores.append(store)
        return ModelboardApp(store, clock=fixed_clock, watch=watch, cursor_blink=False,
                             read_only_reason=read_only_reason)

    yield build
    for store in stores:
        store.close()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, Textual's loop."""
    return "asyncio"
