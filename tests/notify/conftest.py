"""Fixtures of the notifier tests: receivers, notifier processes and a store to write to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notify_support import NotifierProcess, Receiver, Writer


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


@pytest.fixture
def writer(data_file: Path) -> Iterator[Writer]:
    made = Writer(data_file)
    yield made
    made.store.close()
