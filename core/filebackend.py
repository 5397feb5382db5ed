"""The default backend: one JSON file, written atomically under a cross-process lock.

Beside ``model_selections.json`` live ``model_selections.json.lock`` (the writers'
lock), ``model_selections.json.bak`` (a copy of the last good write),
``model_selections.history.jsonl`` (one line per change) and, after a corrupt file
was found, ``model_selections.json.corrupt-<time>``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import queue
import re
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

try:
    import fcntl
except ImportError:  # not POSIX: filelock's own lock is used
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import filelock
    from watchfiles._rust_notify import RustNotify

from .actor import default_actor, host_name
from .backend import Commit, StoredState
from .errors import ConfigurationError, ReadOnlyError
from .fileformat import (
    MAX_DOCUMENT_BYTES,
    DocumentCodec,
    document_digest,
    parse_document,
    parse_rendered,
    render_document,
    revision_of_bytes,
    revision_of_digest,
)
from .history import (
    KEEP_SEGMENTS,
    ROTATE_BYTES,
    HistoryFile,
    Verification,
    sealed_lines,
    stamp_entries,
)
from .logs import logger
from .models import HistoryEntry, Selection
from .safefiles import (
    Folder,
    KeptOpen,
    Ownership,
    close_if_still,
    read_bounded,
    signature,
    user_name,
    write_all,
)

__all__ = ["FileBackend"]

_T = TypeVar("_T")

log = logger(__name__)

#: Milliseconds between looks at the file events: a change is seen one to two steps after
#: it happens, and an idle watcher wakes up once a step (see the README for what it costs).
WATCH_STEP_MS = 10
#: Longest a stream of events is grouped before the store reloads: during a burst of
#: writes it still reloads this often, and the last reload reads the last write.
WATCH_DEBOUNCE_MS = 50
#: A quiet watcher compares the file's stat this often, in case an event was dropped.
WATCH_RESCAN_MS = 1000
#: How often to poll when the system has no file events left to give (inotify limits).
WATCH_POLL_MS = 250
LOCK_TIMEOUT_S = 30.0
#: How often a waiting writer retries the lock (filelock polls; its default is 50 ms).
LOCK_POLL_S = 0.005
#: How many times a write starts over when the file changed between its read under the
#: lock and its rename (only when the lock is deleted or bypassed: see _commit_locked).
COMMIT_ATTEMPTS = 10
_MAX_SYMLINKS = 40
_EMPTY_REVISION = revision_of_bytes(render_document({}))


def _digest(data: bytes) -> bytes:
    # The document's digest, the one its revision comes from: a file as modelboard writes
    # it then needs one hash for both (see _state_from_bytes).
    return document_digest(data)


class FileBackend:
    """Selections in a JSON file; see the module docstring for the files beside it."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False,
                 step_ms: int = WATCH_STEP_MS, debounce_ms: int = WATCH_DEBOUNCE_MS,
                 history_rotate_bytes: int = ROTATE_BYTES,
                 history_keep_segments: int = KEEP_SEGMENTS) -> None:
        self.location = os.fspath(path)
        self.path = Path(os.path.abspath(self.location))
        self.read_only = read_only
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        #: The identity (see _identity) of the unreadable file copied aside at start-up:
        #: a write may replace that one, and only that one.
        self._quarantined: tuple[int, int, int, int] | None = None
        # Remembers the current file's entries: a write or reload then redoes only the
        # entries that changed instead of parsing and rendering the whole file.
        self._codec = DocumentCodec()
        # The token and bytes of our last write: "is the file still what we wrote?" is then
        # a comparison of bytes, not a hash of the whole file (a third of a write's time).
        self._written: tuple[object, bytes] | None = None
        #: A descriptor of the file our last write put in place, and its status just
        #: after: while we hold it open its inode number cannot be reused, so a data file
        #: with that status is exactly those bytes, and a write need not read it back.
        self._held = KeptOpen()
        weakref.finalize(self, self._held.drop)
        #: (device and inode of the data file's folder, the real path of the data file).
        self._real_folder: tuple[tuple[int, int], Path] | None = None
        self._last_read: tuple[object, bytes] | None = None
        self._swept_temp_files = False
        self._thread_lock = threading.Lock()
        #: When this store last saw the file, and with how many selections.
        self._last_seen: tuple[datetime, int] | None = None
        self.history_rotate_bytes = history_rotate_bytes
        self._histories: dict[Path, HistoryFile] = {}
        self.history_keep_segments = history_keep_segments

    # -- paths ----------------------------------------------------------------------------
    @property
    def target(self) -> Path:
        """The real file written to (a symlinked path is written through to its target)."""
        return Path(os.path.realpath(self.path))

    @property
    def history_path(self) -> Path:
        return _history_path_of(self.target)

    @property
    def history(self) -> HistoryFile:
        """The history file (and its rotated segments) of the file written to."""
        return self._history_of(self.target)

    def _history_of(self, target: Path) -> HistoryFile:
        history = self._histories.get(target)
        if history is None:
            history = HistoryFile(_history_path_of(target), rotate_bytes=self.history_rotate_bytes,
                                  keep_segments=self.history_keep_segments,
                                  opener=functools.partial(self._open_sidecar,
                                                           data_name=target.name))
            self._histories[target] = history
        return history

    def _open_sidecar(self, path: Path, flags: int, _mode: int, *, data_name: str) -> int:
        """Open a file beside the data file ``data_name`` as core/safefiles does: never
        followed, never blocking, a regular file only; created with the data file's owner,
        group and mode."""
        with Folder(path.parent) as folder:
            if not flags & os.O_CREAT:
                fd = folder.open(path.name, flags)
                if fd is None:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
                if flags & (os.O_WRONLY | os.O_RDWR):  # a writer brings it in line, as below
                    try:
                        folder.conform(fd, path.name, folder.ownership_for(data_name))
                    except BaseException:
                        os.close(fd)
                        raise
                return fd
            like = folder.ownership_for(data_name)
            fd = folder.open_or_create(path.name, like,
                                       flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC))
            if flags & os.O_TRUNC:
                try:
                    os.ftruncate(fd, 0)
                except BaseException:
                    os.close(fd)
                    raise
            return fd

    @property
    def backup_path(self) -> Path:
        return _backup_path_of(self.target)

    @property
    def lock_path(self) -> Path:
        target = self.target
        return target.with_name(target.name + ".lock")

    def _checked_target(self) -> Path:
        """:attr:`target`, after refusing a symlink the running user should not follow.

        The rule of the kernel's ``protected_symlinks``, applied whatever the sysctl
        says: a symlink is followed only if it belongs to the user running modelboard
        or to the owner of the folder it is in. Root then never writes through a link
        another user planted (``/tmp/models.json -> /etc/app.json``), and an operator's
        own link keeps being written through to its target.
        """
        path = self.path
        for hop in range(_MAX_SYMLINKS):
            try:
                status = os.lstat(path)
            except FileNotFoundError:
                break
            except OSError as exc:
                raise ConfigurationError(f"cannot look at it: {exc.strerror}",
                                         path=str(path)) from None
            if not stat.S_ISLNK(status.st_mode):
                if hop == 0:  # the usual case: no link to judge, only the folder to resolve
                    return self._real_path_in_folder()
                break
            try:
                folder_owner = os.stat(path.parent).st_uid
                link = os.readlink(path)
            except OSError as exc:
                raise ConfigurationError(f"cannot follow the symlink: {exc.strerror}",
                                         path=str(path)) from None
            if status.st_uid not in (os.geteuid(), folder_owner):
                raise ConfigurationError(
                    f"is a symlink owned by {user_name(status.st_uid)}, who is neither you "
                    "nor the owner of its folder; refusing to follow it", path=str(path))
            path = path.parent / link
        else:
            raise ConfigurationError("too many levels of symlinks", path=str(self.path))
        return Path(os.path.realpath(path))

    def _real_path_in_folder(self) -> Path:
        """``realpath`` of :attr:`path` (not a symlink itself), its folder's remembered.

        Two ``stat`` calls prove the remembered real folder is still the one the path
        leads to, where resolving it again walks every component (a tenth of a write at
        10 providers).
        """
        folder = self.path.parent
        try:
            here = os.stat(folder)
            known = self._real_folder
            if known is not None and known[0] == (here.st_dev, here.st_ino):
                again = os.stat(known[1].parent)
                if (again.st_dev, again.st_ino) == known[0]:
                    return known[1]
        except OSError:
            return Path(os.path.realpath(self.path))
        target = Path(os.path.realpath(self.path))
        self._real_folder = ((here.st_dev, here.st_ino), target)
        return target

    def write_problem(self) -> str | None:
        """Why this user cannot write the file, or None if they can (see Backend).

        Writing needs the file (if it exists) and its folder (temporary file, lock file,
        backup, history); for a file not created yet, the nearest existing folder.
        """
        path = self.target
        if path.is_dir():
            return None  # opening fails with a clear message of its own
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if path.exists() and not os.access(path, os.W_OK):
            return f"you cannot write {self.location} ({_why_not_writable(path)})"
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"you cannot create files in {folder} ({_why_not_writable(folder)})"
        return None

    # -- reading --------------------------------------------------------------------------
    def _read_beside(self, folder_path: Path, name: str, limit: int) -> bytes | None:
        """The bytes of ``name`` in ``folder_path`` (bounded, never followed); None if absent."""
        try:
            with Folder(folder_path) as folder:
                return folder.read(name, limit)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _read_data(self) -> bytes | None:
        target = self._checked_target()
        return self._read_beside(target.parent, target.name, MAX_DOCUMENT_BYTES)

    def _state_from_bytes(self, data: bytes, location: str, *,
                          codec: DocumentCodec | None = None) -> StoredState:
        if codec is None:
            selections = parse_document(data, path=location)
            rendered = render_document(selections)
        else:
            token = self._token_of(data)
            if not codec.remembers and isinstance(token, bytes):
                # A fresh store (a proxy starting): when the file's hash is the revision
                # the history's last line recorded, the file is exactly what modelboard
                # rendered, so it is parsed without the duplicate-key hook and not
                # rendered again only to be hashed (measured at 10,000 providers: 76 ms
                # down to 45, against 47 ms for orjson and building the Selections).
                revision = revision_of_digest(token)
                if self.history.newest_revision() == revision:
                    adopted = parse_rendered(data)
                    if adopted is not None and codec.adopt(data, adopted):
                        return StoredState(adopted, revision, token=token)
            selections = codec.parse(data, path=location)
            rendered = codec.render(selections)
            return self._state_of(selections, rendered, data, token)
        return self._state_of(selections, rendered, data, self._token_of(data))

    @staticmethod
    def _state_of(selections: dict[str, Selection], rendered: bytes, data: bytes,
                  token: object) -> StoredState:
        if isinstance(token, bytes) and rendered == data:
            # The file is exactly as we would write it: its token is already the digest
            # of the rendered document, so the revision needs no second hash.
            return StoredState(selections, revision_of_digest(token), token=token)
        return StoredState(selections, revision_of_bytes(rendered), token=token)

    def _token_of(self, data: bytes) -> object:
        for known in (self._written, self._last_read):
            if known is not None and known[1] == data:
                return known[0]
        return _digest(data)

    def token(self) -> object:
        data = self._read_data()
        if data is None:
            return None
        token = self._token_of(data)
        # A reload reads the file again just after this: its hash is then not redone.
        self._last_read = (token, data)
        return token

    def load(self) -> StoredState:
        data = self._read_data()
        if data is None:
            return StoredState({}, _EMPTY_REVISION, token=None, exists=False)
        state = self._state_from_bytes(data, self.location, codec=self._codec)
        self._seen(len(state.selections))
        return state

    def _seen(self, count: int) -> None:
        self._last_seen = (datetime.now(UTC), count)

    def load_backup(self) -> StoredState | None:
        target = self._checked_target()
        backup = _backup_path_of(target)
        try:
            data = self._read_beside(target.parent, backup.name, MAX_DOCUMENT_BYTES)
        except ConfigurationError as exc:
            log.warning("backup is not usable: %s", exc)
            return None
        if data is None:
            return None
        try:
            return self._state_from_bytes(data, str(backup))
        except ConfigurationError as exc:
            log.warning("backup is not usable either: %s", exc)
            return None

    def quarantine(self) -> str | None:
        """Copy the current (unreadable) file aside as ``<name>.corrupt-<UTC time>``.

        The copy is streamed, so an over-size file is copied too, up to the size it had
        when opened (a file still growing cannot fill the disk through this).
        """
        if self.read_only:
            return None
        target = self._checked_target()
        try:
            folder = Folder(target.parent)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with folder:
            try:
                fd = folder.open(target.name)
            except OSError as exc:
                raise ConfigurationError(f"cannot read: {exc.strerror}",
                                         path=str(target)) from None
            if fd is None:
                return None
            try:
                status = os.fstat(fd)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                aside = f"{target.name}.corrupt-{stamp}"
                self._write_new(folder, aside, _copier(fd, status.st_size, str(target)),
                                Ownership.of(status), durable=True)
            finally:
                os.close(fd)
        self._quarantined = _identity(status)
        return str(target.with_name(aside))

    # -- writing --------------------------------------------------------------------------
    def commit(self, change: Callable[[Mapping[str, Selection]], Commit | None], *,
               base: StoredState, create: bool = False) -> StoredState | None:
        """See :meth:`Backend.commit`; ``create`` starts a missing file from empty on purpose.

        Without ``create``, a missing file is refused when this store, the backup or the
        history shows that selections existed (see :meth:`_refuse_lost_file`).
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        for _attempt in range(COMMIT_ATTEMPTS):
            target = self._checked_target()
            try:
                if not target.parent.is_dir():  # a stat; mkdir would fail and raise every time
                    target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"cannot create folder: {exc.strerror}",
                                         path=str(target.parent)) from None
            with self._thread_lock, Folder(target.parent) as folder:
                try:
                    return self._commit_in(folder, target, change, base, create)
                except _ChangedMeanwhile:
                    continue  # someone wrote in the gap: start again from what is there
                except OSError as exc:  # what the steps did not word themselves
                    raise ConfigurationError(f"cannot write: {exc.strerror}; nothing was "
                                             "written", path=self.location) from None
        raise ConfigurationError(
            f"the file changed under every one of {COMMIT_ATTEMPTS} attempts to write it "
            "(is the lock file being deleted?); nothing was written", path=self.location)

    def _commit_in(self, folder: Folder, target: Path,
                   change: Callable[[Mapping[str, Selection]], Commit | None],
                   base: StoredState, create: bool) -> StoredState | None:
        name = target.name
        lock = _WritersLock(folder, name + ".lock", folder.ownership_for(name),
                            LOCK_TIMEOUT_S)
        lock.acquire(poll_interval=LOCK_POLL_S)
        try:
            return self._commit_locked(folder, target, lock, change, base, create)
        finally:
            lock.release()

    def _commit_locked(self, folder: Folder, target: Path, lock: _WritersLock,
                       change: Callable[[Mapping[str, Selection]], Commit | None],
                       base: StoredState, create: bool) -> StoredState | None:
        name = target.name
        self._sweep_temp_files(folder, name)
        fd = folder.open(name)
        seen: os.stat_result | None = None
        data: bytes | None = None
        if fd is not None:
            try:
                seen = os.fstat(fd)
                if self._is_our_last_write(seen):
                    data = self._written[1]  # type: ignore[index]  # untouched since
                elif _identity(seen) != self._quarantined:
                    data = read_bounded(fd, MAX_DOCUMENT_BYTES, str(target))
            finally:
                os.close(fd)
        like = Ownership.of(seen) if seen is not None else lock.like_data
        current: Mapping[str, Selection]
        found: object = None  # the token of what was read, when it was worked out
        read_as_rendered = False  # the codec found the file exactly as it renders it
        if seen is None:
            if not create:
                self._refuse_lost_file(folder, target, base)
            current = {}  # nothing says selections existed: a first write
        elif data is None:
            current = base.selections  # unreadable, but copied aside at start-up
            data = b""  # (not the empty document: its revision is unknown)
        elif (found := self._token_of(data)) == base.token:
            current = base.selections  # unchanged since we loaded it: no need to parse
        else:
            current, read_as_rendered = self._codec.parse_exactly(data, path=self.location)
        result = change(current)
        if result is None:
            return None
        written = {entry.provider for entry in result.history} if result.history else None
        rendered = self._codec.render(result.selections, built_from=current, rewritten=written)
        if len(rendered) > MAX_DOCUMENT_BYTES:
            raise ConfigurationError(
                f"the change would make the file {len(rendered) / 1e6:.1f} MB, over the "
                f"{MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB that readers accept; nothing "
                "was written", path=self.location)
        revision_when_hashed = _revision_soon(rendered)
        # Write-ahead: the history lines are appended and synced before the rename, so a
        # change never reaches the file without them (see core/history.py).
        # A commit without history lines is a copy of another store's state and history
        # (migrate): the history copied already ends at this document.
        append: Callable[[], Callable[[], None]] | None = None
        close_tail: Callable[[], None] = lambda: None  # noqa: E731
        if result.history:
            file_revision = self._revision_now(data, found, current, base, read_as_rendered)
            history = self._history_of(target)
            tail = history.prepare(file_revision, lambda wanted: self._document_at(wanted, base),
                                   current if file_revision is not None else None,
                                   result.history[0].actor)
            entries = result.history

            def append() -> Callable[[], None]:
                stamped = stamp_entries(entries, number=tail.number + 1,
                                        base_revision=file_revision or base.revision,
                                        revision=revision_when_hashed(), before=current,
                                        after=result.selections)
                return history.append(stamped, tail)
            close_tail = tail.close

        def unchanged_since_read() -> bool:
            # Compare before rename: a deleted lock file, a git checkout or a hand edit
            # since we read the file makes this write start over instead of undoing it.
            # A lock file deleted meanwhile is taken again at its name first (waiting for
            # whoever took the new one), so that no writer is between its own check and
            # rename now: this check and the rename are then as good as under the lock.
            for _again in range(COMMIT_ATTEMPTS):
                if lock.still_held():
                    return _same_file(seen, folder.lstat(name))
                lock.take_again(poll_interval=LOCK_POLL_S)
            return False

        freed: list[Callable[[], None]] = []
        try:
            kept = self._write_new(folder, name, rendered, like, durable=True,
                                   before_rename=append, check=unchanged_since_read,
                                   after_rename=lambda: freed.append(self._free_replaced()),
                                   keep_open=True)
        finally:
            close_tail()
        revision = revision_when_hashed()
        self._hold(kept)
        self._quarantined = None
        token = object()  # equal only to itself: _token_of maps these bytes back to it
        self._written = (token, rendered)
        self._seen(len(result.selections))
        try:
            self._refresh_backup(folder, name + ".bak", rendered, like)
        except ConfigurationError as exc:  # the data is safe; a stale backup is only a pity
            log.warning("could not refresh the backup: %s", exc)
        for wait in freed:  # done by now, as a rule: it ran beside the folder's fsync
            wait()
        if type(result.selections) is dict and base.exists:
            # Only the providers that differ from the state the store holds are judged
            # again (at 100,000 providers, judging every one was 82 ms of a 190 ms write;
            # with eight writers at 1,000 it was a third of each one's time).
            if current is base.selections:  # built on that very state: this write's own
                changed = frozenset(written or ())
            else:  # others wrote since: the parse kept every untouched entry's object
                changed = _providers_changed(base.selections, result.selections)
            return StoredState(result.selections, revision, token=token, changed=changed,
                               since=base.token)
        return StoredState(result.selections, revision, token=token)

    def _is_our_last_write(self, seen: os.stat_result) -> bool:
        """Whether the data file, of status ``seen``, is exactly what our last write put there.

        We hold that file open (so its inode number cannot go to another file) and took
        its signature just after the rename, having checked it was not written to since
        it was synced; the descriptor must still be that file too.
        """
        held = self._held.entry
        if held is None or self._written is None or signature(seen) != held[1]:
            return False
        try:
            return signature(os.fstat(held[0])) == held[1]
        except OSError:
            return False

    def _free_replaced(self) -> Callable[[], None]:
        """Close the copy our last write put in place, just replaced by the rename: the
        kernel frees it then (what the raw write pays inside its rename: 70 us even at
        10 providers, 4.4 ms at 100,000). Done in the helper thread while the folder is
        synced and the backup written; call what is returned to wait for it."""
        held = self._held.take()
        if held is None:
            return lambda: None
        closing = _helper.submit(functools.partial(close_if_still, *held))

        def wait() -> None:
            with contextlib.suppress(OSError):  # a read-only descriptor: nothing is lost
                closing()
        return wait

    def _hold(self, kept: tuple[int, os.stat_result] | None) -> None:
        """Keep ``kept`` (a read-only descriptor of the file just put in place, and its
        status once synced) open, if nothing wrote to it since it was synced."""
        if kept is None:
            return
        fd, synced = kept
        try:
            now = os.fstat(fd)
        except OSError:
            os.close(fd)
            return
        if (now.st_ino, now.st_size, now.st_mtime_ns) != \
                (synced.st_ino, synced.st_size, synced.st_mtime_ns):
            os.close(fd)  # written to in place since it was synced: not provably ours
            return
        self._held.entry = (fd, signature(now))

    def _revision_now(self, data: bytes | None, token: object,
                      current: Mapping[str, Selection], base: StoredState,
                      read_as_rendered: bool) -> str | None:
        """The data file's revision as read under the lock (None: it could not be used);
        ``token`` is its token (None when it was not worked out); ``read_as_rendered``:
        the codec found ``data`` to be exactly the rendering of ``current``."""
        if data is None:
            return _EMPTY_REVISION
        if token is None:
            token = self._token_of(data)
        if current is base.selections:
            return base.revision if token == base.token else None
        if read_as_rendered and isinstance(token, bytes):
            return revision_of_digest(token)  # written as we write it: already hashed
        rendered = self._codec.render(current)
        if isinstance(token, bytes) and rendered == data:
            return revision_of_digest(token)  # written as we write it: already hashed
        return revision_of_bytes(rendered)

    def _document_at(self, revision: str, base: StoredState) -> Mapping[str, Selection] | None:
        """A document known to be at ``revision``: the last one loaded, or the backup."""
        if base.revision == revision:
            return base.selections
        backup = self.load_backup()
        if backup is not None and backup.revision == revision:
            return backup.selections
        return None

    def import_state(self, selections: Mapping[str, Selection],
                     history: list[HistoryEntry]) -> StoredState:
        """Store ``selections`` and ``history`` (oldest first, kept verbatim) into an empty place.

        History first (atomically), then the selections under the writers' lock; refuses
        with ConfigurationError, leaving nothing behind, if either file already exists.
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        for existing in (self.target, self.history_path):
            if existing.exists():
                raise ConfigurationError("already exists; migrate only into an empty "
                                         "location, nothing was copied", path=str(existing))
        history_path = self.history_path
        if history:
            try:
                history_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"cannot create folder: {exc.strerror}",
                                         path=str(history_path.parent)) from None
            self._write_atomically(history_path, sealed_lines(history), durable=True)

        def only_if_empty(current: Mapping[str, Selection]) -> Commit:
            if current:
                raise ConfigurationError("another writer stored selections meanwhile; "
                                         "nothing was copied", path=self.location)
            return Commit(selections, ())

        empty = StoredState({}, _EMPTY_REVISION, token=None, exists=False)
        try:
            # create: the history just copied says selections existed, and they are these.
            stored = self.commit(only_if_empty, base=empty, create=True)
        except BaseException:
            with contextlib.suppress(OSError):
                history_path.unlink()  # leave nothing behind
            raise
        assert stored is not None
        return stored

    def _refuse_lost_file(self, folder: Folder, target: Path, base: StoredState) -> None:
        """Refuse to start a missing file from empty when selections existed.

        ``git checkout`` (unlink, then create), ``rm`` and an unfinished restore leave a
        moment, or for ever, with no file: a write then would silently drop every
        provider and lock. The evidence: this store's last load, the backup, the history.
        """
        evidence: str | None = None
        if base.exists and base.selections:
            when = self._last_seen[0] if self._last_seen else None
            evidence = f"this store last saw it {_when(when)} with {len(base.selections)} " \
                "selections"
        else:
            backup = self.load_backup()
            if backup is not None and backup.selections:
                status = folder.lstat(_backup_path_of(target).name)
                when = datetime.fromtimestamp(status.st_mtime, UTC) if status else None
                evidence = f"its backup holds {len(backup.selections)} selections " \
                    f"(written {_when(when)})"
            else:
                history = folder.lstat(_history_path_of(target).name)
                if history is not None and stat.S_ISREG(history.st_mode) and history.st_size:
                    evidence = "its history records changes (the last one " \
                        f"{_when(datetime.fromtimestamp(history.st_mtime, UTC))})"
        if evidence is not None:
            raise ConfigurationError(
                f"file is missing, but {evidence}; nothing was written: run 'modelboard "
                "restore' to bring back the last backup, or 'modelboard init' to start an "
                "empty file on purpose", path=self.location)

    def restore_backup(self, actor: str) -> tuple[StoredState, list[HistoryEntry]]:
        """Make the data file what its backup holds, as a recorded change.

        Works when the file is missing (the refusal of :meth:`_refuse_lost_file` says to
        run this) or was copied aside as corrupt. Every provider that changes gets a
        history line (``set``, ``remove``, ``lock`` or ``unlock``). Returns the state
        written and those lines (none if the file already was the backup).
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        backup = self.load_backup()
        if backup is None:
            raise ConfigurationError("no usable backup to restore from; nothing was written",
                                     path=str(self.backup_path))
        now = datetime.now(UTC)
        lines: list[HistoryEntry] = []

        def restore(current: Mapping[str, Selection]) -> Commit | None:
            lines.clear()
            for provider in sorted(set(current) | set(backup.selections)):
                old, new = current.get(provider), backup.selections.get(provider)
                if old == new:
                    continue
                if new is None:
                    action = "remove"
                elif old is None or old.model_name != new.model_name \
                        or old.editable == new.editable:
                    action = "set"
                else:
                    action = "unlock" if new.editable else "lock"
                lines.append(HistoryEntry(
                    time=now, actor=actor, provider=provider, action=action,
                    old=old.model_name if old else None, new=new.model_name if new else None,
                    revision="", reason=new.lock_reason if action == "lock" and new else None))
            if not lines and self._read_data() is not None:
                return None
            return Commit(backup.selections, tuple(lines))

        empty = StoredState({}, _EMPTY_REVISION, token=None, exists=False)
        stored = self.commit(restore, base=empty, create=True)
        if stored is None:
            return backup, []
        return stored, list(lines)

    def create_empty(self) -> bool:
        """Create the file with no selections if it is missing; False if it exists."""
        created = False

        def empty(current: Mapping[str, Selection]) -> Commit | None:
            nonlocal created
            if current or created:
                return None
            created = True
            return Commit({}, ())

        exists = self._read_data() is not None
        if exists:
            return False
        self.commit(empty, base=StoredState({}, _EMPTY_REVISION, token=None, exists=False),
                    create=True)
        return created

    def _refresh_backup(self, folder: Folder, name: str, data: bytes, like: Ownership) -> None:
        """Overwrite the backup in place with ``data``.

        Measured on ext4: a new file renamed over the backup cost a third of a whole
        write (a new inode, its blocks allocated and the old ones freed), rewriting the
        same file's pages a twentieth of that. The backup is only read after the data
        file turned out corrupt, and then parsed like any file, so a backup torn by a
        crash is refused, never trusted. Anything but a plain file of one link (a
        symlink, a FIFO, a hard link elsewhere) is replaced as a new file instead, never
        written through and never waited on.
        """
        try:
            fd = folder.open_or_create(name, like)
        except ConfigurationError:
            fd = None  # not a regular file: replaced below
        except OSError as exc:
            raise ConfigurationError(f"cannot write: {exc.strerror}",
                                     path=folder.where(name)) from None
        if fd is not None:
            try:
                if os.fstat(fd).st_nlink == 1:
                    write_all(fd, data)
                    os.ftruncate(fd, len(data))
                    return
            except OSError as exc:
                raise ConfigurationError(f"cannot write: {exc.strerror}",
                                         path=folder.where(name)) from None
            finally:
                os.close(fd)
        self._write_new(folder, name, data, like, durable=False)

    def _sweep_temp_files(self, folder: Folder, name: str) -> None:
        """Remove temp files of writers killed mid-write (safe: we hold the lock).

        Only this file's own: ``.<name>.tmp-<16 hex digits>`` matched exactly, so the
        sweep of ``models.json`` never touches ``models.json.staging``'s writes.
        """
        if self._swept_temp_files:
            return
        self._swept_temp_files = True
        ours = re.compile(re.escape(f".{name}.tmp-") + "[0-9a-f]{16}")
        try:
            for leftover in folder.names():
                if ours.fullmatch(leftover):
                    folder.unlink(leftover)
        except OSError as exc:
            log.debug("could not sweep temp files: %s", exc)

    def _write_atomically(self, target: Path, data: bytes, *, durable: bool) -> None:
        """Replace ``target`` with ``data`` (see :meth:`_write_new`), like the data file."""
        with Folder(target.parent) as folder:
            like = folder.ownership_for(self.target.name) \
                if self.target.parent == target.parent else Ownership.private()
            self._write_new(folder, target.name, data, like, durable=durable)

    def _write_new(self, folder: Folder, name: str, data: bytes | Callable[[int], None],
                   like: Ownership, *, durable: bool,
                   before_rename: Callable[[], Callable[[], None]] | None = None,
                   check: Callable[[], bool] | None = None,
                   after_rename: Callable[[], None] | None = None,
                   keep_open: bool = False) -> tuple[int, os.stat_result] | None:
        """Temp file in the same folder, fsync, rename over, fsync the folder.

        ``data`` is the bytes, or a function that writes them to the descriptor it is
        given. The temp file is created exclusively and given ``like``'s owner, group and
        mode before any data goes in. ``before_rename`` runs once the temp file is synced
        (it may refuse by raising); what it returns undoes it if the rename does not
        happen. ``check``, when given, is asked after that, just before the rename; False
        (the file changed since it was read) raises _ChangedMeanwhile. ``after_rename``
        runs just after the rename, before the folder's fsync. With ``keep_open``,
        returns a read-only descriptor of the new file (the caller closes it) and its
        status once synced, before the rename.
        """
        where = folder.where(name)
        temp: str | None = None
        kept: tuple[int, os.stat_result] | None = None
        try:
            temp = f".{name}.tmp-{os.urandom(8).hex()}"
            fd = folder.create(temp, like)
            try:
                if isinstance(data, bytes):
                    write_all(fd, data)
                else:
                    data(fd)
                if durable:
                    os.fsync(fd)
                if keep_open:
                    kept = _read_only_twin(folder, temp, fd)
            finally:
                os.close(fd)
            undo = before_rename() if before_rename is not None else None
            try:
                if check is not None and not check():
                    raise _ChangedMeanwhile
                folder.replace(temp, name)
            except BaseException:
                if undo is not None:
                    undo()
                raise
            temp = None
        except FileNotFoundError:
            # Our temp file was swept by a writer that believed it held the lock (a
            # deleted lock file): start again.
            raise _ChangedMeanwhile from None
        except OSError as exc:
            reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) \
                else exc.strerror
            raise ConfigurationError(f"cannot write: {reason}; the previous file is intact",
                                     path=where) from None
        finally:
            if temp is not None:  # not renamed into place
                if kept is not None:
                    os.close(kept[0])
                with contextlib.suppress(OSError):
                    folder.unlink(temp)
        if after_rename is not None:
            after_rename()
        if durable:
            try:
                _fsync_folder(folder)
            except OSError as exc:
                # The new file is in place and every reader sees it: the write happened
                # (some filesystems cannot sync a folder at all); only whether the rename
                # survives a power loss is in doubt.
                log.warning("%s: written, but the folder could not be synced: %s",
                            where, exc.strerror)
        return kept

    # -- history --------------------------------------------------------------------------
    def read_history(self, provider: str | None = None,
                     limit: int | None = None) -> list[HistoryEntry]:
        try:
            current: str | None = self.load().revision
        except ConfigurationError:
            current = None
        return self.history.entries(provider, limit, current_revision=current)

    def iter_history(self) -> Iterator[HistoryEntry]:
        """What ``read_history`` gives, lazily: read from the end only as far as needed."""
        try:
            current: str | None = self.load().revision
        except ConfigurationError:
            current = None
        return self.history.iter_entries(current_revision=current)

    def verify_history(self) -> Verification:
        return self.history.verify()

    # -- watching -------------------------------------------------------------------------
    def _watch_plan(self) -> tuple[list[str], set[str]]:
        """Folders to watch (nearest existing ones) and the paths whose change matters."""
        wanted = {self.path, self.target}
        folders: set[str] = set()
        interesting: set[str] = {str(p) for p in wanted}
        for path in wanted:
            folder = path.parent
            while not folder.is_dir() and folder != folder.parent:
                interesting.add(str(folder))  # its creation means: watch again, closer
                folder = folder.parent
            folders.add(str(folder))
        return sorted(folders), interesting

    def signature(self) -> tuple[int, int, int, int] | None:
        """What ``stat`` says of the file now (through a symlink), or None if it is gone."""
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns

    def _notifier(self, folders: list[str]) -> RustNotify:
        """A watch on ``folders`` (not recursive), armed when this returns."""
        # watchfiles' documented low-level API: unlike watchfiles.watch(), it says exactly
        # when the watch is armed, and its timeout only wakes Python up (the stop event is
        # checked every step). Imported here: a command that only reads never watches, and
        # the import is a sixth of `modelboard get`'s start (measured with -X importtime).
        from watchfiles._rust_notify import RustNotify, WatchfilesRustInternalError

        try:
            return RustNotify(folders, False, False, 0, False, False)
        except (FileNotFoundError, PermissionError):
            raise
        except (OSError, WatchfilesRustInternalError) as exc:
            # Out of inotify instances or watches: polling is slower, but still live.
            log.warning("%s: no file events (%s); polling every %d ms instead",
                        self.location, exc, WATCH_POLL_MS)
            return RustNotify(folders, False, True, WATCH_POLL_MS, False, False)

    def follow(self, stop: threading.Event, armed: threading.Event) -> Iterator[None]:
        """Yield whenever the file may have changed, until ``stop`` is set.

        Watches the file's folder and filters on the file's name: an atomic replace gives
        the file a new inode, and a watch on the file itself goes deaf after the first one.
        A folder that does not exist yet is waited for from its nearest existing ancestor;
        a symlinked file is watched in the link's folder and in its target's. After each
        (re)arming it yields once, to catch up on whatever changed before the watch was in
        place. Events are grouped for ``step_ms`` (and at most ``debounce_ms``), so a
        burst of writes costs a few reloads, the last of which reads the last write.
        """
        while not stop.is_set():
            plan = self._watch_plan()
            folders, interesting = plan
            target = self.target
            try:
                notify = self._notifier(folders)
            except FileNotFoundError:
                continue  # a folder went away between planning and watching: plan again
            with notify:
                armed.set()
                seen = self.signature()
                yield
                while True:
                    result = notify.watch(self.debounce_ms, self.step_ms, WATCH_RESCAN_MS, stop)
                    if result == "stop":
                        return
                    if isinstance(result, str):  # "timeout": quiet for WATCH_RESCAN_MS
                        # A dropped event (a full event queue, a network mount) is caught
                        # here, for the price of a stat or two a second.
                        if self._watch_plan() != plan or self.target != target:
                            break
                        if self.signature() != seen:
                            seen = self.signature()
                            yield
                        continue
                    paths = {path for _change, path in result}
                    if paths.isdisjoint(interesting) and paths.isdisjoint(folders):
                        continue  # only other files of the folder: temp files, lock, history
                    seen = self.signature()
                    yield
                    if self._watch_plan() != plan or self.target != target:
                        break  # a folder appeared or went, or the symlink moved: re-arm

    def close(self) -> None:
        with self._thread_lock:
            self._held.drop()
            for history in self._histories.values():
                history.close()


class _ChangedMeanwhile(Exception):
    """The data file changed between the read under the lock and the rename: start over."""


class _WritersLock:
    """The writers' lock: ``flock`` on ``<name>.lock`` beside the data file.

    It is the lock filelock takes (``flock`` on the same file, which filelock also leaves
    in place), so the two exclude each other, without filelock's bookkeeping: measured
    100 µs per acquire and release with filelock 4.3 against 2 µs here, at 1,000
    providers more than rendering the changed entry, joining and hashing the document.
    Where ``flock`` is missing (no fcntl, a filesystem without it) filelock takes over.

    The lock file takes the data file's owner and group, and read and write bits only
    for those who may write the data file (``flock`` works on a read-only descriptor, so
    a reader able to open it could hold off every writer); one owned by a user who
    cannot write the data file is refused. The holder writes who it is into the file
    (pid, host, actor, since when), so that a writer that gives up can say who held it.
    """

    def __init__(self, folder: Folder, name: str, like_data: Ownership,
                 timeout: float) -> None:
        self.folder = folder
        self.name = name
        self.like_data = like_data
        self.timeout = timeout
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._older: list[int] = []  # lock files taken before, deleted while we held them
        self._size_at_open = -1
        self._fallback: filelock.BaseFileLock | None = None

    @property
    def where(self) -> str:
        return self.folder.where(self.name)

    def acquire(self, *, poll_interval: float) -> None:
        """Wait for the lock; ConfigurationError after ``timeout`` or if it cannot be had."""
        if fcntl is None:
            self._take_fallback(poll_interval)
            return
        deadline = time.monotonic() + self.timeout
        while True:
            fd = self._open()
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise ConfigurationError(
                                f"another writer has held the lock for over "
                                f"{self.timeout:.0f} s ({_holder_of(fd)}); nothing was "
                                "written", path=self.where) from None
                        # flock has no timeout, so a waiter polls (as filelock does).
                        # Measured with eight writers on one file: a blocking flock in a
                        # helper thread sustained half the writes of polling every 5 ms
                        # (every release woke all seven waiters, and each wait cost a
                        # thread), 194 against 375 writes/s.
                        time.sleep(poll_interval)
                # A lock file deleted (and maybe created again) while we waited: a lock on
                # the old inode excludes nobody, so take the one at the path now.
                held = os.fstat(fd)
                self._identity = (held.st_dev, held.st_ino)
                if self.still_held():
                    self._fd, fd = fd, -1
                    self._record_holder(self._fd)
                    return
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise ConfigurationError(f"cannot take the lock: {exc.strerror}",
                                             path=self.where) from None
                self._take_fallback(poll_interval)
                return
            finally:
                if fd >= 0:
                    os.close(fd)

    @property
    def twin(self) -> str:
        """A second, hidden name of the lock file: the lock's identity survives ``rm`` of it."""
        return f".{self.name}"

    def _link(self, source: str, target: str) -> None:
        """A hard link of ``source`` (never followed) at ``target``, if it can be made."""
        with contextlib.suppress(OSError):  # missing, there already, or not allowed: fine
            os.link(source, target, src_dir_fd=self.folder.fd, dst_dir_fd=self.folder.fd,
                    follow_symlinks=False)

    def _open(self) -> int:
        like = self.like_data.for_lock()
        if self.folder.lstat(self.name) is None:
            # Deleted (as "stale", maybe while held): bring back the same inode from its
            # twin, so that the writers waiting on it and those to come exclude each other.
            self._link(self.twin, self.name)
        try:
            fd = self.folder.open_or_create(self.name, like, os.O_RDWR, vet=self._vet)
        except PermissionError as exc:
            status = self.folder.lstat(self.name)
            owner = f" (it belongs to {user_name(status.st_uid)}, mode " \
                f"{stat.S_IMODE(status.st_mode):04o})" if status is not None else ""
            if status is not None and like.mode & ~stat.S_IMODE(status.st_mode):
                # The data file was opened up after its lock was made (chmod 0660 to share
                # it): only the lock's owner or root may bring it in line.
                owner += (f"; the data file grants more (mode {self.like_data.mode:04o}): "
                          f"one write by {user_name(status.st_uid)} or root brings the "
                          "files beside it in line")
            raise ConfigurationError(f"cannot take the lock: {exc.strerror}{owner}",
                                     path=self.where) from None
        except ConfigurationError:
            raise
        except OSError as exc:
            raise ConfigurationError(f"cannot take the lock: {exc.strerror}",
                                     path=self.where) from None
        status = os.fstat(fd)
        self._size_at_open = status.st_size
        open_to = stat.S_IMODE(status.st_mode) & 0o066 & ~like.mode
        if status.st_gid != like.gid:
            open_to |= stat.S_IMODE(status.st_mode) & 0o060
        if open_to:
            # Another member's lock file we may not change: it must not let in more users
            # than the data file does.
            os.close(fd)
            raise ConfigurationError(
                f"is open to users who cannot write the data file (mode "
                f"{stat.S_IMODE(status.st_mode):04o}, owned by {user_name(status.st_uid)}); "
                "refusing to use it as the writers' lock (its owner or root can remove it)",
                path=self.where)
        twin = self.folder.lstat(self.twin)
        if twin is None or (twin.st_dev, twin.st_ino) != (status.st_dev, status.st_ino):
            if twin is not None and twin.st_nlink == 1:
                self.folder.unlink(self.twin)  # the twin of a lock file deleted for good
            self._link(self.name, self.twin)
        return fd

    def _vet(self, status: os.stat_result) -> None:
        """Refuse a lock file whose owner could not write the data file (a planted one)."""
        if status.st_uid in (os.geteuid(), 0) or self.like_data.can_write(status.st_uid):
            return
        raise ConfigurationError(
            f"is owned by {user_name(status.st_uid)}, who cannot write the data file; "
            "refusing to use it as the writers' lock (its owner or root can remove it)",
            path=self.where)

    def take_again(self, *, poll_interval: float) -> None:
        """Also take the lock file now at the name (ours was deleted), keeping ours."""
        if self._fd is not None:
            self._older.append(self._fd)
            self._fd = None
        self.acquire(poll_interval=poll_interval)

    def still_held(self) -> bool:
        """Whether the lock file at the name (or, if that was deleted, at its twin) is still
        the one we hold: a new writer then takes this same one."""
        if self._fallback is not None:
            return True
        status = self.folder.lstat(self.name) or self.folder.lstat(self.twin)
        return status is not None and (status.st_dev, status.st_ino) == self._identity

    def _record_holder(self, fd: int) -> None:
        # Padded to one length and left in place at release (it is read only by a writer
        # that waits, while the lock is held, so after its holder wrote it): the lock
        # file's block is then never freed and allocated again, which on ext4 made every
        # commit flush one more data block.
        record = _holder_record().ljust(HOLDER_RECORD_BYTES)
        try:
            os.pwrite(fd, record, 0)
            if self._size_at_open != len(record):
                os.ftruncate(fd, len(record))
        except OSError as exc:  # who holds it is for messages only
            log.debug("%s: could not record the lock's holder: %s", self.where, exc.strerror)

    def _take_fallback(self, poll_interval: float) -> None:
        # Imported only where flock is missing: filelock (and what it imports) is a sixth
        # of `modelboard get`'s start, which never writes (measured with -X importtime).
        import filelock

        self._fallback = filelock.FileLock(self.where, timeout=self.timeout)
        try:
            self._fallback.acquire(poll_interval=poll_interval)
        except filelock.Timeout:
            raise ConfigurationError(f"another writer has held the lock for over "
                                     f"{self.timeout:.0f} s", path=self.where) from None
        except OSError as exc:
            raise ConfigurationError(f"cannot take the lock: {exc.strerror}",
                                     path=self.where) from None

    def release(self) -> None:
        if self._fallback is not None:
            self._fallback.release()
        held = [*self._older, *([self._fd] if self._fd is not None else [])]
        self._fd, self._older = None, []
        for fd in held:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def _holder_of(fd: int) -> str:
    """Who holds the lock, as its holder recorded it in the lock file."""
    try:
        record = json.loads(os.pread(fd, 4096, 0))
        # Whatever it says stays on one line: ConfigurationError escapes the message.
        return (f"held by pid {record['pid']} on {record['host']} as {record['actor']} "
                f"since {record['since']}")
    except (OSError, ValueError, TypeError, KeyError):
        return "its holder did not say who it is"


def _same_file(before: os.stat_result | None, now: os.stat_result | None) -> bool:
    """Whether ``now`` is still the file ``before`` was (or both are missing)."""
    if before is None or now is None:
        return before is None and now is None
    return signature(before) == signature(now)


def _read_only_twin(folder: Folder, name: str, fd: int) -> tuple[int, os.stat_result] | None:
    """A read-only descriptor of the temp file ``fd`` (at ``name``) and its status, or
    None if the name is no longer that file: the one kept after the rename must not be
    able to write the data file."""
    synced = os.fstat(fd)
    twin = folder.open(name)
    if twin is None:
        return None
    status = os.fstat(twin)
    if (status.st_dev, status.st_ino) != (synced.st_dev, synced.st_ino):
        os.close(twin)
        return None
    return twin, synced


def _providers_changed(before: Mapping[str, Selection],
                       after: Mapping[str, Selection]) -> frozenset[str]:
    """Every provider whose selection is not the same object in both (or is in one only)."""
    changed = {provider for provider, selection in after.items()
               if before.get(provider) is not selection}
    changed.update(before.keys() - after.keys())
    return frozenset(changed)


#: From this size on, a write hashes the document in another thread, while the same
#: bytes are written and synced (both release the GIL). Measured: the hash of 1,000
#: providers (175 kB) is 0.1 ms, of 100,000 (17.5 MB) 10 ms; handing a job over costs
#: 30 us (starting a thread for it, 120 to 270 us: more than the hash below a megabyte).
_ELSEWHERE_BYTES = 64 * 1024


class _Helper:
    """One thread per process for the parts of a write that need not hold it up.

    Jobs run in order; before a fork every job handed over is finished (so no child
    inherits a descriptor that was about to be closed), and a child starts afresh.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], list[object],
                                            threading.Event]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._unfinished = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=self.finish_all, after_in_child=self._forget)

    def _forget(self) -> None:
        # A forked child has this object but not its thread, and maybe the guard held by
        # a thread of the parent that is not there: start afresh.
        self._guard = threading.Lock()
        self._jobs = queue.SimpleQueue()
        self._thread = None
        self._unfinished = 0

    def submit(self, job: Callable[[], _T]) -> Callable[[], _T]:
        """Run ``job`` in the helper thread; call what is returned to wait for its result.

        Where no thread can be started (a process limit, an interpreter shutting down),
        ``job`` runs here and now: a write never fails for want of a helper.
        """
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                started = threading.Thread(target=self._work, args=(self._jobs,),
                                           name="modelboard-writes", daemon=True)
                try:
                    started.start()
                    self._thread = started
                except RuntimeError:
                    self._thread = None
            thread = self._thread
            if thread is not None:
                self._unfinished += 1
        if thread is None:
            return _done_now(job)
        outcome: list[object] = []
        done = threading.Event()
        self._jobs.put((job, outcome, done))

        def wait() -> _T:
            while not done.wait(0.5):
                if not thread.is_alive():  # stopped at interpreter exit: do it here
                    return job()
            if isinstance(outcome[0], Exception):
                raise outcome[0]
            return outcome[0]  # type: ignore[return-value]
        return wait

    def finish_all(self) -> None:
        """Wait until every job handed over so far is done."""
        if self._unfinished and threading.current_thread() is not self._thread:
            self.submit(lambda: None)()

    def _work(self, jobs: queue.SimpleQueue[tuple[Callable[[], object], list[object],
                                                  threading.Event]]) -> None:
        while True:
            job, outcome, done = jobs.get()
            try:
                outcome.append(job())
            except Exception as exc:  # handed to whoever waits: the thread goes on
                outcome.append(exc)
            with self._guard:
                self._unfinished -= 1
            done.set()


def _done_now(job: Callable[[], _T]) -> Callable[[], _T]:
    """``job`` run here; what is returned gives its result or raises its exception."""
    try:
        result = job()
    except Exception as exc:  # handed to whoever waits, as from the helper thread
        error = exc

        def fail() -> _T:
            raise error
        return fail
    return lambda: result


_helper = _Helper()


def _revision_soon(rendered: bytes) -> Callable[[], str]:
    """The revision of ``rendered``, hashed now or elsewhere: call for it when needed."""
    if len(rendered) < _ELSEWHERE_BYTES:
        revision = revision_of_bytes(rendered)
        return lambda: revision
    return _helper.submit(lambda: revision_of_bytes(rendered))


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _copier(source: int, size: int, where: str) -> Callable[[int], None]:
    """A writer of ``source``'s first ``size`` bytes, in pieces, for _write_new."""
    def copy(fd: int) -> None:
        left = size
        while left > 0:
            try:
                chunk = os.read(source, min(left, 1 << 20))
            except OSError as exc:
                raise ConfigurationError(f"cannot read: {exc.strerror}", path=where) from None
            if not chunk:
                break
            write_all(fd, chunk)
            left -= len(chunk)
    return copy


#: The holder record's length (padded with spaces; JSON ignores them).
HOLDER_RECORD_BYTES = 512
#: (pid, the holder record without its time): who we are is worked out once per process
#: (measured: 0.2 ms of a 0.47 ms write at 10 providers on tmpfs went to it), again after
#: a fork.
_holder_identity: tuple[int, str] | None = None


def _holder_record() -> bytes:
    """The JSON line a lock file holds while held: pid, host, actor and since when."""
    global _holder_identity
    pid = os.getpid()
    known = _holder_identity
    if known is None or known[0] != pid:
        whole = json.dumps({"actor": default_actor(), "host": host_name(),
                            "pid": pid}, sort_keys=True)
        known = _holder_identity = (pid, whole[:-1])  # without its closing brace
    since = json.dumps(datetime.now(UTC).isoformat(timespec="seconds"))
    return f'{known[1]}, "since": {since}}}\n'.encode()


def _when(moment: datetime | None) -> str:
    return "at an unknown time" if moment is None else \
        f"at {moment.strftime('%Y-%m-%d %H:%M:%S')} UTC"


def _why_not_writable(path: Path) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def _history_path_of(target: Path) -> Path:
    return target.with_name(f"{target.stem}.history.jsonl")


def _backup_path_of(target: Path) -> Path:
    return target.with_name(target.name + ".bak")


def _fsync_folder(folder: Folder) -> None:
    folder.fsync()
