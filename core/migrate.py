"""Copying selections and their history between a file and Redis, either way.

``modelboard migrate --from config/model_selections.json --to redis://host:6379/0``
calls :func:`copy_store`. The destination must be empty: a migration never overwrites
selections or history someone else stored, and a failed one leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ConfigurationError
from .opening import _backend_for

__all__ = ["Migration", "copy_store", "migrate"]


@dataclass(frozen=True, slots=True)
class Migration:
    """What a migration copied (``str()`` of it is the one-line summary)."""

    source: str
    destination: str
    selections: int
    #: History entries copied, and the oldest left out for the destination's history limit.
    entries: int
    left_out: int
    #: The destination's revision after the copy.
    revision: str

    def __str__(self) -> str:
        count, entries = self.selections, self.entries
        left_out = (f"; the oldest {self.left_out} left out (the history keeps {entries})"
                    if self.left_out else "")
        return (f"copied {count} selection{'s' if count != 1 else ''} and {entries} history "
                f"entr{'ies' if entries != 1 else 'y'} from {self.source} to "
                f"{self.destination} (revision {self.revision}){left_out}")


def migrate(source: str, destination: str) -> str:
    """Copy the selections and history at ``source`` to the empty ``destination``.

    Either may be a file path or a ``redis://`` URL. Returns a one-line summary;
    raises ConfigurationError (one line, nothing written) when it cannot be done.
    """
    return str(copy_store(source, destination))


def copy_store(source: str, destination: str) -> Migration:
    """:func:`migrate`, returning what was copied."""
    reader = _backend_for(source, read_only=True)
    try:
        state = reader.load()
        if not state.exists:
            raise ConfigurationError("nothing stored here to migrate", path=reader.location)
        history = list(reversed(reader.read_history()))  # oldest first, as appended
    finally:
        reader.close()
    if _same_place(source, destination):
        raise ConfigurationError("source and destination are the same; nothing was copied",
                                 path=reader.location)
    writer = _backend_for(destination, read_only=False)
    left_out = 0
    limit: int | None = getattr(writer, "history_limit", None)
    if limit is not None and len(history) > limit:
        left_out = len(history) - limit
        history = history[-limit:]
    try:
        stored = writer.import_state(state.selections, history)
    finally:
        writer.close()
    return Migration(reader.location, writer.location, len(state.selections), len(history),
                     left_out, stored.revision)


def _same_place(source: str, destination: str) -> bool:
    if "://" in source or "://" in destination:
        return source == destination
    return os.path.realpath(source) == os.path.realpath(destination)
