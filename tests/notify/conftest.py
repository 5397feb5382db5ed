"""Fixtures of the notifier tests: receivers, notifier processes and a store to write to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notify_support import NotifierProcess, Receiver

from modelboard.core import open_store


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        receiver = Receiver(*args, **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def notifiers(data_file: Path, tmp_path: Path) -> Iterator[Callable[[Path], NotifierProcess]]:
    made: list[NotifierProcess] = []

    def start(config: Path) -> NotifierProcess:
        notifier = NotifierProcess(data_file, config, tmp_path / f"notifier-{len(made)}.log")
        made.append(notifier)
        return notifier

    yield start
    for notifier in made:
        notifier.stop()


class Writer:
    """Revisions made through the core, as a proxy host's operator would."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.store = open_store(path, actor="alice@ops", report=False)
        self.count = 0

    def revision(self, reason: str | None = None) -> int:
        """One write (ollama's model changes); returns its revision number."""
        self.count += 1
        self.store.set_model_selection("ollama", f"llama-{self.count}", reason=reason)
        return self.store.revisions(limit=1)[0].number  # type: ignore[return-value]


@pytest.fixture
def writer(data_file: Path) -> Iterator[Writer]:
    made = Writer(data_file)
    yield made
    made.store.close()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
