"""The line between the store and where selections live (a file, or later Redis).

Everything above this line (validation, locks, conflicts, history records,
subscriptions) is the store's; a backend only reads whole states, commits a new one
atomically while holding off other writers, keeps history, reports changes, and owns
its files or keys (including how a migration imports into it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from .models import HistoryEntry, Selection

__all__ = ["Backend", "Commit", "StoredState"]


@dataclass(frozen=True, slots=True)
class StoredState:
    """A whole state as read from (or written to) a backend.

    ``token`` identifies the stored bytes cheaply, so that a reload of what this
    process just wrote is recognised without parsing. ``exists`` is False when there
    is nothing stored yet (a file not yet created). ``changed``, when a backend knows
    it, names the only providers that differ from the state whose token is ``since``
    (a delta), so that the store re-judges and diffs those alone; a backend that sets it
    hands ``selections`` over as a dict it never changes again.
    """

    selections: Mapping[str, Selection]
    revision: str
    token: object
    exists: bool = True
    changed: frozenset[str] | None = None
    since: object = None


@dataclass(frozen=True, slots=True)
class Commit:
    """What a write wants stored: the new whole state and its history lines."""

    selections: Mapping[str, Selection]
    history: tuple[HistoryEntry, ...]


class Backend(Protocol):
    """Storage for one set of selections."""

    #: Where the state lives, for messages (never contains a password).
    location: str
    read_only: bool

    def load(self) -> StoredState:
        """Read the whole state now.

        Raises ConfigurationError if what is stored does not parse; returns a state
        with ``exists=False`` if nothing is stored.
        """
        ...

    def token(self) -> object:
        """A cheap identity of what is stored now, comparable with ``StoredState.token``."""
        ...

    def commit(self, change: Callable[[Mapping[str, Selection]], Commit | None], *,
               base: StoredState) -> StoredState | None:
        """Apply ``change`` to the current state and store the result atomically.

        Other writers (threads, processes, hosts) are held off from reading the current
        state until the new one is stored, so ``change`` always sees the latest. It may
        raise to refuse; it returns None when there is nothing to write (and then so
        does ``commit``). ``base`` is what the caller last loaded: reused without
        parsing when nothing changed since, and built upon when what is stored cannot
        be used (gone, or corrupt and already quarantined).
        """
        ...

    def quarantine(self) -> str | None:
        """Keep a copy of unreadable stored data before anything overwrites it.

        Returns where the copy went (None if there was nothing to copy).
        """
        ...

    def load_backup(self) -> StoredState | None:
        """The last good state kept at the last successful write, if any."""
        ...

    def write_problem(self) -> str | None:
        """Why the running user could not write here, in one line; None if they could.

        Checked without writing anything (the editor asks before it opens a store, to
        open read-only and say why). None also when only a write could tell (a server).
        """
        ...

    def read_history(self, provider: str | None = None,
                     limit: int | None = None) -> list[HistoryEntry]:
        """History entries, newest first."""
        ...

    def import_state(self, selections: Mapping[str, Selection],
                     history: list[HistoryEntry]) -> StoredState:
        """Store ``selections`` and ``history`` (oldest first, verbatim) into an empty backend.

        What ``modelboard migrate`` writes with (it reads with ``load`` and
        ``read_history``). Refuses with ConfigurationError, writing nothing, if the
        backend already holds selections or history.
        """
        ...

    def follow(self, stop: threading.Event, armed: threading.Event) -> Iterator[None]:
        """Yield whenever the stored state may have changed, until ``stop`` is set.

        Sets ``armed`` once changes from then on are sure to be reported.
        """
        ...

    def close(self) -> None:
        ...
