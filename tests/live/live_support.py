"""What the live-reload tests share: states that say which write they came from, writers
that change the file the way other programs do, and a subscriber one can wait on."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from modelboard.core import ChangeEvent, Selection
from modelboard.core.fileformat import render_document, revision_of_bytes

#: Generous, because two cores are shared by a whole test run; waits end as soon as
#: what they wait for happens, so a fast machine never waits this long.
TIMEOUT_S = 15.0
PROVIDERS = ("anthropic", "google", "mistral", "openai")


def generation_document(generation: int, providers: tuple[str, ...] = PROVIDERS,
                        *, actor: str = "writer@elsewhere") -> bytes:
    """A whole state in which every provider's model names the same ``generation``."""
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    return render_document({
        provider: Selection(model_name=f"model-{generation}", last_updated=stamp,
                            updated_by=actor)
        for provider in providers})


def generation_of(event_or_snapshot: object) -> set[int]:
    """The generations a snapshot's providers carry (one, if it was written whole)."""
    snapshot = getattr(event_or_snapshot, "new", event_or_snapshot)
    return {int(selection.model_name.rsplit("-", 1)[1])
            for selection in snapshot.values()}  # type: ignore[attr-defined]


def revision_for(document: bytes) -> str:
    return revision_of_bytes(document)


def replace_atomically(path: Path, data: bytes) -> None:
    """What a careful tool or a deploy script does: temp file, fsync, rename over."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".deploy.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def write_in_place(path: Path, chunks: list[bytes],
                   between: Callable[[int], None] = lambda _index: None) -> None:
    """What ``echo > file`` or vim with backupcopy=yes does: truncate, then write in pieces.

    ``between(i)`` runs after chunk ``i`` is flushed, while the file is still incomplete.
    """
    with open(path, "wb") as handle:  # truncates: the file is empty from here on
        for index, chunk in enumerate(chunks):
            handle.write(chunk)
            handle.flush()
            if index < len(chunks) - 1:
                between(index)


def split_in(data: bytes, pieces: int) -> list[bytes]:
    size = -(-len(data) // pieces)
    return [data[start:start + size] for start in range(0, len(data), size)]


class Recorder:
    """A subscriber that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[ChangeEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: ChangeEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[ChangeEvent], bool], *,
                 timeout: float = TIMEOUT_S, after: int = 0) -> ChangeEvent:
        """The first event from index ``after`` on that satisfies ``predicate``."""
        def found() -> ChangeEvent | None:
            return next((e for e in self.events[after:] if predicate(e)), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout=timeout):
                raise AssertionError(
                    f"no matching event within {timeout} s; got {self.describe()}")
            event = found()
            assert event is not None
            return event

    def wait_for_revision(self, revision: str, **kwargs: float | int) -> ChangeEvent:
        return self.wait_for(lambda e: e.error is None and e.new.revision == revision,
                             **kwargs)  # type: ignore[arg-type]

    def wait_for_error(self, fragment: str = "", **kwargs: float | int) -> ChangeEvent:
        return self.wait_for(lambda e: e.error is not None and fragment in str(e.error),
                             **kwargs)  # type: ignore[arg-type]

    def describe(self) -> list[str]:
        return [f"error: {e.error}" if e.error else
                f"{e.source} {e.new.revision} {[c.describe() for c in e.changes]}"
                for e in list(self.events)]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_thread_count() -> int:
    """Every thread of this process, including those Python does not know (Rust's)."""
    return len(os.listdir("/proc/self/task"))
