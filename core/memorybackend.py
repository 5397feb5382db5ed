"""A backend that keeps the selections in memory: the Backend contract without storage.

For tests of the store's rules and of code built on a store (no file, no server, no
clock but the store's), and for a process that wants a store nothing else shares::

    store = SelectionStore(MemoryBackend({"openai": Selection("gpt-4o")}))

It keeps what the file and Redis backends keep (the state, its revision, a backup of
the previous state and the history) and follows the contract as they do: ``commit``
holds off other writers while the change runs, ``follow`` yields after every commit.
:meth:`corrupt` stands in for a hand edit that broke the stored document, so that what
a store does with a bad state can be tested too.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace

from .backend import Commit, StoredState
from .errors import ConfigurationError, ReadOnlyError
from .fileformat import revision_of
from .models import HistoryEntry, Selection

__all__ = ["MemoryBackend"]

_tokens = itertools.count(1)


class MemoryBackend:
    """Selections in this process's memory, shared by every store opened on the instance."""

    def __init__(self, selections: Mapping[str, Selection] | None = None, *,
                 location: str = "memory", read_only: bool = False) -> None:
        self.location = location
        self.read_only = read_only
        self._changed = threading.Condition()  # its lock is the writers' lock
        self._state = self._stored(dict(selections or {}), exists=selections is not None)
        self._backup: StoredState | None = None
        self._history: list[HistoryEntry] = []  # oldest first
        self._error: ConfigurationError | None = None

    @staticmethod
    def _stored(selections: Mapping[str, Selection], *, exists: bool = True) -> StoredState:
        return StoredState(selections, revision_of(selections), token=next(_tokens),
                           exists=exists)

    # -- the Backend protocol ---------------------------------------------------------------
    def load(self) -> StoredState:
        with self._changed:
            if self._error is not None:
                raise self._error
            return self._state

    def token(self) -> object:
        with self._changed:
            return None if self._error is not None else self._state.token

    def commit(self, change: Callable[[Mapping[str, Selection]], Commit | None], *,
               base: StoredState) -> StoredState | None:
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        with self._changed:
            # Like a quarantined file: a broken state is built upon from what the caller had.
            current = base.selections if self._error is not None else self._state.selections
            result = change(current)
            if result is None:
                return None
            self._backup = self._state if self._error is None else self._backup
            self._error = None
            self._state = self._stored(dict(result.selections))
            revision = self._state.revision
            self._history.extend(replace(entry, revision=revision) for entry in result.history)
            self._changed.notify_all()
            return self._state

    def quarantine(self) -> str | None:
        return None  # nothing to copy aside: the broken state is not kept anywhere

    def load_backup(self) -> StoredState | None:
        with self._changed:
            return self._backup

    def write_problem(self) -> str | None:
        return None  # memory is always writable (read_only is a choice, not a problem)

    def read_history(self, provider: str | None = None,
                     limit: int | None = None) -> list[HistoryEntry]:
        with self._changed:
            entries = [entry for entry in reversed(self._history)
                       if provider is None or entry.provider == provider]
        return entries if limit is None else entries[:limit]

    def follow(self, stop: threading.Event, armed: threading.Event) -> Iterator[None]:
        """Yield after every commit (or :meth:`corrupt`), and once at once to catch up."""
        with self._changed:
            seen = self._state.token, self._error
        armed.set()
        yield
        while not stop.is_set():
            with self._changed:
                # A short wait, so that a set ``stop`` is noticed without a commit.
                self._changed.wait_for(lambda last=seen: self._now() != last,  # type: ignore[misc]
                                       timeout=0.05)
                now = self._now()
            if now != seen:
                seen = now
                yield

    def _now(self) -> tuple[object, ConfigurationError | None]:
        return self._state.token, self._error

    def import_state(self, selections: Mapping[str, Selection],
                     history: list[HistoryEntry]) -> StoredState:
        """Store ``selections`` and ``history`` (oldest first) into this empty backend."""
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        with self._changed:
            if self._state.exists or self._history:
                raise ConfigurationError("already holds selections or history; nothing was "
                                         "copied", path=self.location)
            self._state = self._stored(dict(selections))
            self._history = list(history)
            self._changed.notify_all()
            return self._state

    def close(self) -> None:
        pass

    # -- for tests ----------------------------------------------------------------------------
    def corrupt(self, reason: str = "not valid JSON") -> None:
        """Make the stored state unreadable, as a broken hand edit would (until a commit)."""
        with self._changed:
            self._error = ConfigurationError(reason, path=self.location, line=1, column=1)
            self._changed.notify_all()

    def repair(self) -> None:
        """Make the stored state readable again, as it was before :meth:`corrupt`."""
        with self._changed:
            self._error = None
            self._state = replace(self._state, token=next(_tokens))
            self._changed.notify_all()
