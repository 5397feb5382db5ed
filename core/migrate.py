"""Copying selections and their history between a file and Redis, either way.

``modelboard migrate --from config/model_selections.json --to redis://host:6379/0``
calls :func:`migrate`. The destination must be empty: a migration never overwrites
selections or history someone else stored, and a failed one leaves nothing behind.
"""

from __future__ import annotations

import os

from .errors import ConfigurationError
from .opening import _backend_for

__all__ = ["migrate"]


def migrate(source: str, destination: str) -> str:
    """Copy the selections and history at ``source`` to the empty ``destination``.

    Either may be a file path or a ``redis://`` URL. Returns a one-line summary;
    raises ConfigurationError (one line, nothing written) when it cannot be done.
    """
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
    left_out = ""
    limit: int | None = getattr(writer, "history_limit", None)
    if limit is not None and len(history) > limit:
        left_out = f"; the oldest {len(history) - limit} left out (the history keeps {limit})"
        history = history[-limit:]
    try:
        stored = writer.import_state(state.selections, history)
    finally:
        writer.close()
    count = len(state.selections)
    return (f"copied {count} selection{'s' if count != 1 else ''} and {len(history)} history "
            f"entr{'ies' if len(history) != 1 else 'y'} from {reader.location} to "
            f"{writer.location} (revision {stored.revision}){left_out}")


def _same_place(source: str, destination: str) -> bool:
    if "://" in source or "://" in destination:
        return source == destination
    return os.path.realpath(source) == os.path.realpath(destination)
