"""Fixtures of the live-reload tests: a selections file and a store watching it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import Recorder, generation_document

from modelboard.core import SelectionStore, open_store


@pytest.fixture
def selections_file(tmp_path: Path) -> Path:
    """A selections file holding generation 0."""
    folder = tmp_path / "config"
    folder.mkdir()
    path = folder / "model_selections.json"
    path.write_bytes(generation_document(0))
    return path


@pytest.fixture
def watched(selections_file: Path) -> Iterator[tuple[SelectionStore, Recorder]]:
    """A store on ``selections_file``, watching, with a Recorder subscribed."""
    store = open_store(selections_file, actor="proxy@here")
    recorder = Recorder()
    store.subscribe(recorder)
    store.start_watching()
    try:
        yield store, recorder
    finally:
        store.close()
