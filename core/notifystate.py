"""Where ``modelboard notify`` keeps what it must not forget, and how notifiers elect one.

Per target (endpoint or hook) a small JSON record: the cursor (the last revision it
took), the last attempt and its answer, and whether it is disabled. Beside them a
delivery log, JSON lines, bounded. On a file store these are files beside the data file
(``model_selections.notify.<name>.json``, ``model_selections.notify.log.jsonl``), or in
the configuration's ``state_dir``, written as core/safefiles.py says (relative to the
folder, never through a link, the data file's owner and mode, replaced atomically and
synced). On Redis they are keys under the store's prefix (``<prefix>:notify:<name>``,
``<prefix>:notify:log``).

The election goes through the store itself, whatever ``state_dir`` says: on a file
store a lock file beside the data file (``model_selections.notify.lock``) taken with a
non-blocking ``flock`` and held for the deliverer's life; on Redis a lease key
(``<prefix>:notify:lease``) set with NX and an expiry, renewed by its holder and
deleted on release only if it is still the holder's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import socket
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from .backend import Backend
from .errors import BackendUnavailableError, ConfigurationError
from .logs import logger
from .notifyconfig import foreign_link, untrusted
from .safefiles import Folder, Ownership, user_name, write_all

__all__ = ["Elector", "NotifyState", "TargetState", "state_for"]

log = logger(__name__)

#: The longest record read back (a target's state, the lock's holder line).
_RECORD_LIMIT = 64 * 1024
_LOG_LIMIT = 256 * 1024 * 1024


@dataclass(slots=True)
class TargetState:
    """What one target's record says."""

    #: The last revision number taken (delivered, or skipped by ``start = "now"``);
    #: None when this target never ran.
    cursor: int | None = None
    #: The last attempt: time, rev, webhook id, answer, ok.
    last_attempt: dict[str, Any] | None = None
    #: Why and since when it is disabled (a 410 Gone); None while enabled.
    disabled: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "last_attempt": self.last_attempt,
                "disabled": self.disabled}

    @classmethod
    def from_bytes(cls, data: bytes | None, where: str) -> TargetState:
        if data is None:
            return cls()
        try:
            record = json.loads(data)
            cursor = record["cursor"]
            if cursor is not None and (not isinstance(cursor, int) or isinstance(cursor, bool)
                                       or cursor < 0):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError("is not a notifier's state record; move it aside to "
                                     "start this target again", path=where) from None
        last, disabled = record.get("last_attempt"), record.get("disabled")
        return cls(cursor, last if isinstance(last, dict) else None,
                   disabled if isinstance(disabled, dict) else None)


def holder_text() -> str:
    """Who this process is, for the lock's holder record and messages."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class Elector(Protocol):
    """One deliverer per store."""

    def try_lead(self) -> bool:
        """Take the lead, or keep it; True while this process leads."""
        ...

    def holder(self) -> str | None:
        """Who leads now (host and pid), if anyone is known to."""
        ...

    def release(self) -> None:
        ...


class NotifyState(Protocol):
    where: str

    def read(self, name: str) -> TargetState: ...

    def write(self, name: str, state: TargetState) -> None: ...

    def log(self, record: dict[str, Any]) -> None: ...

    def read_log(self, limit: int) -> list[dict[str, Any]]: ...


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- files ---------------------------------------------------------------------------------
def _vet_for(like: Ownership, folder: Folder, name: str, what: str) -> Any:
    """A ``vet`` refusing a file at ``name`` whose owner could not write the data file.

    Such a file was planted (in a folder others may write, like ``/tmp``): a cursor or
    ``disabled`` mark in it would silence deliveries, a lock held through it would hold
    off the deliverer, a log would be read by its planter. Without a data file beside
    (``state_dir``), only the running user's or root's files are taken.
    """
    def vet(status: os.stat_result) -> None:
        if status.st_uid in (os.geteuid(), 0) or like.can_write(status.st_uid):
            return
        raise ConfigurationError(
            f"is owned by {user_name(status.st_uid)}, who cannot write the data file; "
            f"refusing to use it as {what} (its owner or root can remove it)",
            path=folder.where(name))
    return vet


class FileNotifyState:
    """The state of a file store's notifiers: files beside the data file (or in a folder)."""

    def __init__(self, folder: Path, stem: str, log_lines: int, *,
                 data_file: Path | None) -> None:
        #: The data file whose owner and mode new files take (when beside it).
        self.data_file = data_file
        self.prefix = f"{stem}.notify."
        self.folder = folder
        self.where = str(self.folder / f"{self.prefix}*")
        self.log_lines = log_lines
        self._logged: int | None = None  # lines in the log, once counted

    def _like(self, folder: Folder) -> Ownership:
        if self.data_file is None or self.folder != self.data_file.parent:
            return Ownership.private()
        status = folder.lstat(self.data_file.name)
        if status is not None and stat.S_ISREG(status.st_mode):
            # The data file's owner, group and bits, but never others': the answers kept
            # (a hook's last stderr line) may say more than the selections do.
            like = Ownership.of(status)
            return Ownership(like.uid, like.gid, like.mode & 0o660)
        return Ownership.private()

    def _open_folder(self, *, create: bool = False) -> Folder | None:
        """The state's folder; None if it is missing and not to be created."""
        try:
            folder = Folder(self.folder)
        except FileNotFoundError:
            if not create:
                return None
            if self.data_file is not None and self.folder == self.data_file.parent:
                raise ConfigurationError("no such folder", path=str(self.folder)) from None
            try:
                os.makedirs(self.folder, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"cannot create the state folder: {exc.strerror}",
                                         path=str(self.folder)) from None
            folder = Folder(self.folder)
        if self.data_file is None or self.folder != self.data_file.parent:
            # A state_dir: another user who may change it could delete or replace cursors.
            why = foreign_link(self.folder) or untrusted(os.fstat(folder.fd), folder=True)
            if why is not None:
                folder.close()
                raise ConfigurationError(f"{why}; refusing it as the notifier's state_dir "
                                         "(make it yours or root's, chmod go-w)",
                                         path=str(self.folder))
        return folder

    def _folder(self) -> Folder:
        folder = self._open_folder(create=True)
        assert folder is not None
        return folder

    def _name(self, target: str) -> str:
        return f"{self.prefix}{target}.json"

    def read(self, name: str) -> TargetState:
        folder = self._open_folder()
        if folder is None:
            return TargetState()
        with folder:
            vet = _vet_for(self._like(folder), folder, self._name(name), "a notifier's state")
            return TargetState.from_bytes(folder.read(self._name(name), _RECORD_LIMIT,
                                                      vet=vet),
                                          folder.where(self._name(name)))

    def write(self, name: str, state: TargetState) -> None:
        data = json.dumps(state.to_json(), sort_keys=True, ensure_ascii=False).encode() + b"\n"
        with self._folder() as folder:
            _replace(folder, self._name(name), data, self._like(folder))

    @property
    def _log_name(self) -> str:
        return f"{self.prefix}log.jsonl"

    def log(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n"
        with self._folder() as folder:
            like = self._like(folder)
            vet = _vet_for(like, folder, self._log_name, "the delivery log")
            if self._logged is None:
                old = folder.read(self._log_name, _LOG_LIMIT, vet=vet)
                self._logged = old.count(b"\n") if old else 0
            if self._logged >= self.log_lines:
                # Keep the newest half: the log stays bounded, and trimming is rare.
                old = folder.read(self._log_name, _LOG_LIMIT, vet=vet) or b""
                kept = old.splitlines(keepends=True)[-(self.log_lines // 2):]
                _replace(folder, self._log_name, b"".join(kept), like)
                self._logged = len(kept)
            try:
                fd = folder.open_append(self._log_name, like, vet=vet)
            except OSError as exc:
                raise ConfigurationError(f"cannot write: {exc.strerror}",
                                         path=folder.where(self._log_name)) from None
            try:
                write_all(fd, line)
            finally:
                os.close(fd)
            self._logged += 1

    def read_log(self, limit: int) -> list[dict[str, Any]]:
        folder = self._open_folder()
        if folder is None:
            return []
        with folder:
            data = folder.read(self._log_name, _LOG_LIMIT, vet=_vet_for(
                self._like(folder), folder, self._log_name, "the delivery log")) or b""
        records = []
        for line in data.splitlines()[-limit:]:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records


class FileElector:
    """A lock file beside the data file, held with ``flock`` for the leader's life.

    The kernel drops the lock when the process dies, however it dies, so a standby
    takes over at its next try. A lock file deleted or replaced while held is noticed
    (the name no longer leads to the descriptor held) and the lead is given up.
    """

    def __init__(self, folder: Path, name: str, data_name: str) -> None:
        self.folder = folder
        self.name = name
        self.data_name = data_name
        self.where = str(folder / name)
        self._fd: int | None = None

    def try_lead(self) -> bool:
        with Folder(self.folder) as folder:
            if self._fd is not None:
                now = folder.lstat(self.name)
                held = os.fstat(self._fd)
                if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                    return True
                log.warning("%s: the notifier's lock file was removed or replaced; taking "
                            "it again", self.where)
                self.release()
            try:
                fd = folder.open_or_create(self.name, self._data_like(folder).for_lock(),
                                           os.O_RDWR, vet=self._vet(folder))
            except OSError as exc:
                raise ConfigurationError(f"cannot open the notifier's lock: {exc.strerror}",
                                         path=self.where) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                raise ConfigurationError(f"cannot take the notifier's lock: {exc.strerror}",
                                         path=self.where) from None
            record = f"{holder_text()} since {now_text()}\n".encode()
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, record, 0)
            except OSError as exc:
                log.debug("%s: could not record the holder: %s", self.where, exc.strerror)
            self._fd = fd
            return True

    def _data_like(self, folder: Folder) -> Ownership:
        status = folder.lstat(self.data_name)
        return (Ownership.of(status) if status is not None and stat.S_ISREG(status.st_mode)
                else Ownership.private())

    def _vet(self, folder: Folder) -> Any:
        return _vet_for(self._data_like(folder), folder, self.name, "the notifier's lock")

    def holder(self) -> str | None:
        """The holder's record, if the lock is held now (a dead holder's record is stale).

        None too for a lock file that :meth:`try_lead` refuses (a planted one)."""
        try:
            with Folder(self.folder) as folder:
                fd = folder.open(self.name)
                if fd is None:
                    return None
                try:
                    self._vet(folder)(os.fstat(fd))
                except ConfigurationError:
                    os.close(fd)
                    return None
        except (ConfigurationError, OSError):
            return None
        try:
            if self._fd is None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError:
                    pass  # held: read who holds it
                else:
                    return None  # nobody holds it
            data = os.pread(fd, _RECORD_LIMIT, 0)
        finally:
            os.close(fd)  # closing drops the shared lock, if taken
        text = data.decode("utf-8", "replace").strip()
        return text or "another notifier"

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock


def _replace(folder: Folder, name: str, data: bytes, like: Ownership) -> None:
    """``folder.replace_with``, its failure said in one line naming the file."""
    try:
        folder.replace_with(name, data, like)
    except OSError as exc:
        raise ConfigurationError(f"cannot write: {exc.strerror}",
                                 path=folder.where(name)) from None


# -- Redis ---------------------------------------------------------------------------------
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisNotifyState:
    """The state of a Redis store's notifiers: keys under the store's prefix."""

    def __init__(self, client: Any, prefix: str, location: str, log_lines: int,
                 lease_ms: int) -> None:
        self.client = client
        self.prefix = f"{prefix}:notify:"
        self.where = f"{location} ({self.prefix}*)"
        self.log_lines = log_lines
        self.lease_ms = lease_ms

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return call(*args, **kwargs)
        except redis.RedisError as exc:
            raise BackendUnavailableError(f"{self.where}: cannot {what}: {exc}") from None

    def read(self, name: str) -> TargetState:
        data = self._call("read the notifier's state", self.client.get, self.prefix + name)
        return TargetState.from_bytes(data, f"{self.where} {self.prefix}{name}")

    def write(self, name: str, state: TargetState) -> None:
        data = json.dumps(state.to_json(), sort_keys=True, ensure_ascii=False)
        self._call("write the notifier's state", self.client.set, self.prefix + name, data)

    def log(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False)
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(self.prefix + "log", line)
        pipe.ltrim(self.prefix + "log", -self.log_lines, -1)
        self._call("write the delivery log", pipe.execute)

    def read_log(self, limit: int) -> list[dict[str, Any]]:
        lines = self._call("read the delivery log", self.client.lrange, self.prefix + "log",
                           -limit, -1)
        records = []
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records


class RedisElector:
    """A lease key: ``SET NX PX``, renewed by its holder, deleted only by its holder."""

    def __init__(self, state: RedisNotifyState, key: str, lease_ms: int) -> None:
        self.state = state
        self.key = key
        self.lease_ms = lease_ms
        self.token = f"{holder_text()} since {now_text()} {secrets.token_hex(8)}"
        self._leading = False
        self._renew = state.client.register_script(_RENEW)
        self._release = state.client.register_script(_RELEASE)

    def try_lead(self) -> bool:
        if self._leading:
            kept = self.state._call("renew the notifier's lease", self._renew,
                                    keys=[self.key], args=[self.token, self.lease_ms])
            if kept:
                return True
            log.warning("%s: the notifier's lease expired before it was renewed; taking it "
                        "again", self.state.where)
            self._leading = False
        taken = self.state._call("take the notifier's lease", self.state.client.set,
                                 self.key, self.token, nx=True, px=self.lease_ms)
        self._leading = bool(taken)
        return self._leading

    def holder(self) -> str | None:
        value = self.state._call("read the notifier's lease", self.state.client.get, self.key)
        if value is None:
            return None
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return text.rsplit(" ", 1)[0]

    def release(self) -> None:
        if self._leading:
            self._leading = False
            with contextlib.suppress(BackendUnavailableError):
                self.state._call("release the notifier's lease", self._release,
                                 keys=[self.key], args=[self.token])


def state_for(backend: Backend, *, state_dir: Path | None, log_lines: int,
              lease_ms: int) -> tuple[NotifyState, Elector]:
    """Where the notifiers of ``backend`` keep their state, and how they elect one."""
    from .filebackend import FileBackend

    if isinstance(backend, FileBackend):
        data_file = backend.target
        stem = data_file.name.removesuffix(".json")
        files = FileNotifyState(state_dir or data_file.parent, stem, log_lines,
                                data_file=data_file)
        return files, FileElector(data_file.parent, f"{stem}.notify.lock", data_file.name)
    client = getattr(backend, "client", None)
    keys = getattr(backend, "keys", None)
    if client is None or keys is None:
        raise ConfigurationError("modelboard notify follows a file or Redis store",
                                 path=backend.location)
    redis_state = RedisNotifyState(client, keys.prefix, backend.location, log_lines, lease_ms)
    elector = RedisElector(redis_state, redis_state.prefix + "lease", lease_ms)
    if state_dir is not None:
        stem = "redis-" + "".join(ch if ch.isalnum() or ch in "-_" else "_"
                                  for ch in keys.prefix)
        return FileNotifyState(state_dir, stem, log_lines, data_file=None), elector
    return redis_state, elector
