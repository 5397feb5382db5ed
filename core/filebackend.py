"""The default backend: one JSON file, written atomically under a cross-process lock.

Beside ``model_selections.json`` live ``model_selections.json.lock`` (the writers'
lock), ``model_selections.json.bak`` (a copy of the last good write),
``model_selections.history.jsonl`` (one line per change) and, after a corrupt file
was found, ``model_selections.json.corrupt-<time>``.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import fcntl
except ImportError:  # not POSIX: filelock's own lock is used
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import filelock
    from watchfiles._rust_notify import RustNotify

from .backend import Commit, StoredState
from .errors import ConfigurationError, ReadOnlyError
from .fileformat import (
    DocumentCodec,
    document_digest,
    parse_document,
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
from .models import HistoryEntry, Selection

__all__ = ["FileBackend"]

log = logging.getLogger("modelboard")

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
        self._quarantined: bytes | None = None
        # Remembers the current file's entries: a write or reload then redoes only the
        # entries that changed instead of parsing and rendering the whole file.
        self._codec = DocumentCodec()
        # The token and bytes of our last write: "is the file still what we wrote?" is then
        # a comparison of bytes, not a hash of the whole file (a third of a write's time).
        self._written: tuple[object, bytes] | None = None
        self._last_read: tuple[object, bytes] | None = None
        self._swept_temp_files = False
        self._thread_lock = threading.Lock()
        self._file_locks: dict[Path, _WritersLock] = {}
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
                                  keep_segments=self.history_keep_segments)
            self._histories[target] = history
        return history

    @property
    def backup_path(self) -> Path:
        return _backup_path_of(self.target)

    @property
    def lock_path(self) -> Path:
        target = self.target
        return target.with_name(target.name + ".lock")

    # -- reading --------------------------------------------------------------------------
    def _read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise ConfigurationError("is a folder, not a file", path=str(path)) from None
        except OSError as exc:
            raise ConfigurationError(f"cannot read: {exc.strerror}", path=str(path)) from None

    def _state_from_bytes(self, data: bytes, location: str, *,
                          codec: DocumentCodec | None = None) -> StoredState:
        if codec is None:
            selections = parse_document(data, path=location)
            rendered = render_document(selections)
        else:
            selections = codec.parse(data, path=location)
            rendered = codec.render(selections)
        token = self._token_of(data)
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
        data = self._read(self.path)
        if data is None:
            return None
        token = self._token_of(data)
        # A reload reads the file again just after this: its hash is then not redone.
        self._last_read = (token, data)
        return token

    def load(self) -> StoredState:
        data = self._read(self.path)
        if data is None:
            return StoredState({}, _EMPTY_REVISION, token=None, exists=False)
        return self._state_from_bytes(data, self.location, codec=self._codec)

    def load_backup(self) -> StoredState | None:
        backup = self.backup_path
        data = self._read(backup)
        if data is None:
            return None
        try:
            return self._state_from_bytes(data, str(backup))
        except ConfigurationError as exc:
            log.warning("backup is not usable either: %s", exc)
            return None

    def quarantine(self) -> str | None:
        """Copy the current (unreadable) file aside as ``<name>.corrupt-<UTC time>``."""
        if self.read_only:
            return None
        data = self._read(self.path)
        if data is None:
            return None
        target = self.target
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = target.with_name(f"{target.name}.corrupt-{stamp}")
        self._write_atomically(aside, data, durable=True)
        self._quarantined = _digest(data)
        return str(aside)

    # -- writing --------------------------------------------------------------------------
    def _lock_for(self, target: Path) -> _WritersLock:
        lock = self._file_locks.get(target)
        if lock is None:
            lock = _WritersLock(target.with_name(target.name + ".lock"), LOCK_TIMEOUT_S)
            self._file_locks[target] = lock
        return lock

    def commit(self, change: Callable[[Mapping[str, Selection]], Commit | None], *,
               base: StoredState) -> StoredState | None:
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        target = self.target
        try:
            if not target.parent.is_dir():  # a stat; mkdir would fail and raise every time
                target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create folder: {exc.strerror}",
                                     path=str(target.parent)) from None
        with self._thread_lock:
            try:
                self._lock_for(target).acquire(poll_interval=LOCK_POLL_S)
            except LockTimeout:
                raise ConfigurationError(
                    f"another writer has held the lock for over {LOCK_TIMEOUT_S:.0f} s",
                    path=str(self.lock_path)) from None
            except OSError as exc:
                raise ConfigurationError(f"cannot take the lock: {exc.strerror}",
                                         path=str(self.lock_path)) from None
            try:
                return self._commit_locked(target, change, base)
            finally:
                self._lock_for(target).release()

    def _commit_locked(self, target: Path,
                       change: Callable[[Mapping[str, Selection]], Commit | None],
                       base: StoredState) -> StoredState | None:
        self._sweep_temp_files(target)
        data = self._read(target)
        current: Mapping[str, Selection]
        if data is None:
            current = base.selections  # a deleted file: build on the last good state
        elif self._token_of(data) == base.token:
            current = base.selections  # unchanged since we loaded it: no need to parse
        else:
            try:
                current = self._codec.parse(data, path=self.location)
            except ConfigurationError:
                if _digest(data) != self._quarantined:
                    raise
                current = base.selections  # already copied aside at start-up
        result = change(current)
        if result is None:
            return None
        rendered = self._codec.render(result.selections)
        revision = revision_of_bytes(rendered)
        # Write-ahead: the history lines are appended and synced before the rename, so a
        # change never reaches the file without them (see core/history.py).
        # A commit without history lines is a copy of another store's state and history
        # (migrate): the history copied already ends at this document.
        append: Callable[[], Callable[[], None]] | None = None
        if result.history:
            file_revision = self._revision_now(data, current, base)
            history = self._history_of(target)
            tail = history.prepare(file_revision, lambda wanted: self._document_at(wanted, base),
                                   current if file_revision is not None else None,
                                   result.history[0].actor)
            entries = stamp_entries(result.history, number=tail.number + 1,
                                    base_revision=file_revision or base.revision,
                                    revision=revision, before=current, after=result.selections)

            def append() -> Callable[[], None]:
                return history.append(entries, tail)
            try:
                self._write_atomically(target, rendered, durable=True, before_rename=append)
            finally:
                tail.close()
        else:
            self._write_atomically(target, rendered, durable=True)
        self._quarantined = None
        token = object()  # equal only to itself: _token_of maps these bytes back to it
        self._written = (token, rendered)
        try:
            self._refresh_backup(rendered, _backup_path_of(target))
        except ConfigurationError as exc:  # the data is safe; a stale backup is only a pity
            log.warning("could not refresh the backup: %s", exc)
        return StoredState(result.selections, revision, token=token)

    def _revision_now(self, data: bytes | None, current: Mapping[str, Selection],
                      base: StoredState) -> str | None:
        """The data file's revision as read under the lock (None: it could not be used)."""
        if data is None:
            return _EMPTY_REVISION
        if current is base.selections:
            return base.revision if self._token_of(data) == base.token else None
        return revision_of_bytes(self._codec.render(current))

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
            stored = self.commit(only_if_empty, base=empty)
        except BaseException:
            with contextlib.suppress(OSError):
                history_path.unlink()  # leave nothing behind
            raise
        assert stored is not None
        return stored

    def _refresh_backup(self, data: bytes, path: Path) -> None:
        """Overwrite the backup in place with ``data``.

        Measured on ext4: a new file renamed over the backup cost a third of a whole
        write (a new inode, its blocks allocated and the old ones freed), rewriting the
        same file's pages a twentieth of that. The backup is only read after the data
        file turned out corrupt, and then parsed like any file, so a backup torn by a
        crash is refused, never trusted. Anything but a plain file of one link (a symlink,
        a hard link elsewhere) is replaced as a new file instead, never written through.
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            self._write_atomically(path, data, durable=False)
            return
        try:
            status = os.fstat(fd)
            if stat.S_ISREG(status.st_mode) and status.st_nlink == 1:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.ftruncate(fd, len(data))
                return
        except OSError as exc:
            raise ConfigurationError(f"cannot write: {exc.strerror}", path=str(path)) from None
        finally:
            os.close(fd)
        self._write_atomically(path, data, durable=False)

    def _sweep_temp_files(self, target: Path) -> None:
        """Remove temp files of writers killed mid-write (safe: we hold the lock)."""
        if self._swept_temp_files:
            return
        self._swept_temp_files = True
        try:
            for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
                leftover.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("could not sweep temp files: %s", exc)

    def _write_atomically(self, target: Path, data: bytes, *, durable: bool,
                          before_rename: Callable[[], Callable[[], None]] | None = None,
                          ) -> None:
        """Temp file in the same folder, fsync, rename over, fsync the folder.

        The file's mode (and owner, when root) is kept; a new file gets 0600.
        ``before_rename`` runs once the temp file is synced (it may refuse by raising);
        what it returns undoes it if the rename then fails.
        """
        try:
            existing = os.stat(target)
            mode, owner = stat.S_IMODE(existing.st_mode), (existing.st_uid, existing.st_gid)
        except FileNotFoundError:
            mode, owner = 0o600, None
        except OSError as exc:
            raise ConfigurationError(f"cannot write: {exc.strerror}", path=str(target)) from None
        temp_path: str | None = None
        try:
            fd, temp_path = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                             dir=target.parent)
            with os.fdopen(fd, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fchmod(temp.fileno(), mode)
                if owner is not None and os.geteuid() == 0:
                    os.fchown(temp.fileno(), *owner)
                if durable:
                    os.fsync(temp.fileno())
            undo = before_rename() if before_rename is not None else None
            try:
                os.replace(temp_path, target)
            except OSError:
                if undo is not None:
                    undo()
                raise
            temp_path = None
        except OSError as exc:
            reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) \
                else exc.strerror
            raise ConfigurationError(f"cannot write: {reason}; the previous file is intact",
                                     path=str(target)) from None
        finally:
            if temp_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp_path)
        if durable:
            try:
                _fsync_folder(target.parent)
            except OSError as exc:
                # The new file is in place and every reader sees it: the write happened
                # (some filesystems cannot sync a folder at all); only whether the rename
                # survives a power loss is in doubt.
                log.warning("%s: written, but the folder could not be synced: %s",
                            target, exc.strerror)

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

    def _signature(self) -> tuple[int, int, int, int] | None:
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
                seen = self._signature()
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
                        if self._signature() != seen:
                            seen = self._signature()
                            yield
                        continue
                    paths = {path for _change, path in result}
                    if paths.isdisjoint(interesting) and paths.isdisjoint(folders):
                        continue  # only other files of the folder: temp files, lock, history
                    seen = self._signature()
                    yield
                    if self._watch_plan() != plan or self.target != target:
                        break  # a folder appeared or went, or the symlink moved: re-arm

    def close(self) -> None:
        self._file_locks.clear()


class LockTimeout(Exception):
    """Another writer held the writers' lock for longer than the timeout."""


def _filelock(path: Path, timeout: float) -> filelock.BaseFileLock:
    # Imported only where flock is missing: filelock (and what it imports) is a sixth of
    # `modelboard get`'s start, which never writes (measured with -X importtime).
    import filelock

    return filelock.FileLock(path, timeout=timeout)


class _WritersLock:
    """The writers' lock: ``flock`` on the lock file beside the data file.

    It is the lock filelock takes (``flock`` on the same file, which filelock also leaves
    in place), so the two exclude each other, without filelock's bookkeeping: measured
    100 µs per acquire and release with filelock 4.3 against 2 µs here, at 1,000
    providers more than rendering the changed entry, joining and hashing the document.
    Where ``flock`` is missing (no fcntl, a filesystem without it) filelock takes over.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._fallback: filelock.BaseFileLock | None = \
            _filelock(path, timeout) if fcntl is None else None

    def acquire(self, *, poll_interval: float) -> None:
        """Wait for the lock; LockTimeout after ``timeout``, OSError if it cannot be had."""
        if self._fallback is not None:
            self._acquire_fallback(poll_interval)
            return
        deadline = time.monotonic() + self.timeout
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise LockTimeout(str(self.path)) from None
                        time.sleep(poll_interval)  # how filelock waits too: flock has no timeout
                # A lock file deleted (and maybe created again) while we waited: a lock on
                # the old inode excludes nobody, so take the one at the path now.
                with contextlib.suppress(FileNotFoundError):
                    held, current = os.fstat(fd), os.stat(self.path)
                    if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                        self._fd, fd = fd, -1
                        return
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                self._fallback = _filelock(self.path, self.timeout)
                self._acquire_fallback(poll_interval)
                return
            finally:
                if fd >= 0:
                    os.close(fd)

    def _acquire_fallback(self, poll_interval: float) -> None:
        import filelock

        assert self._fallback is not None
        try:
            self._fallback.acquire(poll_interval=poll_interval)
        except filelock.Timeout:
            raise LockTimeout(str(self.path)) from None

    def release(self) -> None:
        if self._fd is None:
            if self._fallback is not None:
                self._fallback.release()
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _history_path_of(target: Path) -> Path:
    return target.with_name(f"{target.stem}.history.jsonl")


def _backup_path_of(target: Path) -> Path:
    return target.with_name(target.name + ".bak")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
