"""Commands that bring a selections file back: ``restore`` (from its backup) and ``init``."""

from __future__ import annotations

from ..errors import ConfigurationError
from ..filebackend import FileBackend
from ..store import SelectionStore
from ..text import escape
from .fleet import finish_write, wait_if_asked
from .output import change_line, shown
from .session import EXIT_OK, Session
from .shapes import history_entry_json

__all__ = ["cmd_init", "cmd_restore"]


def _file_backend(store: SelectionStore, session: Session, command: str) -> FileBackend:
    backend = store.backend
    if not isinstance(backend, FileBackend):
        raise ConfigurationError(f"{command} works on a selections file, not on this store",
                                 path=shown(session.location))
    if backend.read_only:
        raise ConfigurationError("opened read-only; nothing was written",
                                 path=shown(session.location))
    return backend


def cmd_restore(session: Session) -> int:
    """The last good backup back in place (a missing or corrupt file), as a recorded change."""
    # Opened writable even if the file is corrupt: it is then copied aside first.
    store = session.open(read_only=session.args.read_only)
    backend = _file_backend(store, session, "restore")
    stored, lines = backend.restore_backup(session.args.actor or store.actor)
    if session.args.wait is not None or session.as_json:
        store.reload()  # written through the backend: the store learns the revision it wrote
    if session.as_json:
        return finish_write(session, store, {
            "file": backend.location, "restored_from": str(backend.backup_path),
            "selections": len(stored.selections),
            # As the history recorded them (numbered, with the revision written).
            "entries": [history_entry_json(entry)
                        for entry in store.history(limit=len(lines))] if lines else []})
    for line in lines:
        session.terminal.line(change_line(line.provider, line.old, line.new)
                              + ("" if line.action == "set" else f" ({line.action})"))
    count = len(stored.selections)
    what = f"{count} selection{'s' if count != 1 else ''}"
    if lines:
        session.terminal.line(escape(f"{backend.location}: restored {what} from "
                                     f"{backend.backup_path}"))
    else:
        session.terminal.line(escape(f"{backend.location}: already as its backup ({what})"))
    return wait_if_asked(session, store)


def cmd_init(session: Session) -> int:
    """An empty selections file, on purpose (refused if one exists)."""
    backend = _file_backend(session.open(read_only=session.args.read_only), session, "init")
    if not backend.create_empty():
        state = backend.load()
        return session.refuse(f"{backend.location}: already exists with "
                              f"{len(state.selections)} selections; nothing was written",
                              kind="exists")
    if session.as_json:
        session.print_json({"file": backend.location, "created": True,
                            "revision": backend.load().revision})
    else:
        session.terminal.line(escape(f"{backend.location}: created with no selections"))
    return EXIT_OK
