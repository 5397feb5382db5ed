"""Copying selections and their history between a file and Redis, either way.

``modelboard migrate --from config/model_selections.json --to redis://host:6379/0``
calls :func:`migrate`. The destination must be empty: a migration never overwrites
selections or history someone else stored, and a failed one leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

from .backend import Backend, Commit, StoredState
from .errors import ConfigurationError
from .filebackend import FileBackend
from .fileformat import render_document, revision_of_bytes
from .history import sealed_lines
from .models import HistoryEntry, Selection
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
        stored = _store_into_empty(writer, state.selections, history)
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


def _store_into_empty(backend: Backend, selections: Mapping[str, Selection],
                      history: list[HistoryEntry]) -> StoredState:
    if isinstance(backend, FileBackend):
        return _store_into_empty_file(backend, selections, history)
    import_state = getattr(backend, "import_state", None)  # the Redis backend, imported lazily
    if import_state is None:
        raise ConfigurationError("cannot migrate into this kind of location",
                                 path=backend.location)
    stored: StoredState = import_state(selections, history)
    return stored


def _store_into_empty_file(backend: FileBackend, selections: Mapping[str, Selection],
                           history: list[HistoryEntry]) -> StoredState:
    """History first (atomically, verbatim), then the selections under the writers' lock."""
    for existing in (backend.target, backend.history_path):
        if existing.exists():
            raise ConfigurationError("already exists; migrate only into an empty location, "
                                     "nothing was copied", path=str(existing))
    history_path = backend.history_path
    if history:
        try:
            history_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create folder: {exc.strerror}",
                                     path=str(history_path.parent)) from None
        backend._write_atomically(history_path, sealed_lines(history), durable=True)

    def only_if_empty(current: Mapping[str, Selection]) -> Commit:
        if current:
            raise ConfigurationError("another writer stored selections meanwhile; nothing "
                                     "was copied", path=backend.location)
        return Commit(selections, ())

    empty = StoredState({}, revision_of_bytes(render_document({})), token=None, exists=False)
    try:
        stored = backend.commit(only_if_empty, base=empty)
    except BaseException:
        with contextlib.suppress(OSError):
            history_path.unlink()  # leave nothing behind
        raise
    assert stored is not None
    return stored
