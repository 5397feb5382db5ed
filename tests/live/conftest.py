"""Fixtures of the live-reload tests: a selections file and a store watching it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import PROVIDERS, Recorder, generation_document

from modelboard.core import SelectionStore, open_store


@pytest.fixture(autouse=True)
def _generation_catalog(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog (for every store, in this process and in children) accepting the
    generation models (``model-N``) for the providers the generation documents use
    (the four bundled ones and ``provider-000`` to ``provider-099``), so
    that what these tests write is what a store serves."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.json"
    names = [*PROVIDERS, *(f"provider-{index:03d}" for index in range(100))]
    path.write_text(json.dumps({"mode": "extend", "providers": {
        provider: {"any_model": True} for provider in names}}))
    monkeypatch.setenv("MODELBOARD_CATALOG", str(path))


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
