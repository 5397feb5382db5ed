"""Where a fleet's reader reports live, and what one holds: the typed, JSON-able report.

For a file, one report file per process in ``<name>.readers/`` beside the data file (or in
``$MODELBOARD_READERS_DIR``); for Redis, one key per process under the store's prefix,
expiring after an hour of silence. A report that is malformed, from a newer version, not
modelboard's, or named for another reader is refused with the reason (``ValueError``);
``modelboard.core.fleet`` shows such a report as unreadable.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import BackendUnavailableError, ConfigurationError
from .safefiles import Folder, Ownership, write_all

if TYPE_CHECKING:
    from .backend import Backend

__all__ = [
    "DEAD_AFTER_S",
    "READERS_DIR_ENV_VAR",
    "FileReportSink",
    "RawReport",
    "ReaderReport",
    "RedisReportSink",
    "ReportSink",
    "sink_for",
]

#: Marks a report as modelboard's; anything else in the folder is unreadable.
REPORT_FORMAT = "modelboard-reader"
REPORT_VERSION = 1
#: A reader silent this long is dead: its report is removed (Redis lets it expire).
DEAD_AFTER_S = 3600.0
READERS_DIR_ENV_VAR = "MODELBOARD_READERS_DIR"
#: A report is a few hundred bytes; anything much larger is not one.
MAX_REPORT_BYTES = 64 * 1024


def clean_text(text: str, limit: int = 200) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()[:limit]


def safe_id(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:120]



# -- the report --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReaderReport:
    """What one reader process says about itself, as written in its heartbeat."""

    id: str
    host: str
    pid: int
    name: str
    #: Which store it reads (the data file's real path, or the Redis key prefix).
    store: str
    revision: str
    loaded_at: datetime
    load_error: str | None
    warnings: tuple[str, ...]
    watching: bool
    version: str
    started_at: datetime
    #: Grows by one with every report this process writes: observers see it move.
    sequence: int
    #: Seconds between this reader's heartbeats.
    interval_s: float
    #: The reader's user id (a report file must belong to it).
    uid: int
    #: The reader's own clock when it wrote this: shown, never used to judge staleness.
    written_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT, "format_version": REPORT_VERSION,
            "id": self.id, "host": self.host, "pid": self.pid, "name": self.name,
            "store": self.store, "revision": self.revision,
            "loaded_at": self.loaded_at.isoformat(), "load_error": self.load_error,
            "warnings": list(self.warnings), "watching": self.watching,
            "version": self.version, "started_at": self.started_at.isoformat(),
            "sequence": self.sequence, "interval_s": self.interval_s, "uid": self.uid,
            "written_at": self.written_at.isoformat(),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=True).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> ReaderReport:
        """Parse a report; ValueError saying why if it is not one this version can trust."""
        if len(data) > MAX_REPORT_BYTES:
            raise ValueError(f"over {MAX_REPORT_BYTES // 1024} KiB: not a report")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON ({exc})") from None
        except RecursionError:
            raise ValueError("nested too deeply: not a report") from None
        if not isinstance(raw, dict) or raw.get("format") != REPORT_FORMAT:
            raise ValueError("not a modelboard reader report")
        version = raw.get("format_version")
        if type(version) is not int or version < 1:
            raise ValueError("no report version")
        if version > REPORT_VERSION:
            raise ValueError(f"report version {version} is newer than this modelboard "
                             f"understands ({REPORT_VERSION})")
        try:
            report = cls(
                id=_text(raw["id"]), host=_text(raw["host"]), pid=_int(raw["pid"]),
                name=_text(raw["name"]), store=_text(raw["store"]),
                revision=_text(raw["revision"]), loaded_at=_moment(raw["loaded_at"]),
                load_error=None if raw["load_error"] is None else _text(raw["load_error"]),
                warnings=tuple(_text(w) for w in _list(raw["warnings"])),
                watching=_bool(raw["watching"]), version=_text(raw["version"]),
                started_at=_moment(raw["started_at"]), sequence=_int(raw["sequence"]),
                interval_s=_number(raw["interval_s"]), uid=_int(raw["uid"]),
                written_at=_moment(raw["written_at"]))
        except KeyError as exc:
            raise ValueError(f"field {exc.args[0]!r} is missing") from None
        if not report.id or report.id != safe_id(report.id):
            raise ValueError("bad reader id")
        return report


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, found {type(value).__name__}")
    return clean_text(value, 2000)


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a count, found {value!r}"[:80])
    return value


def _number(value: object) -> float:
    if type(value) not in (int, float) or not 0 < value <= 3600:  # type: ignore[operator]
        raise ValueError(f"expected an interval in seconds, found {value!r}"[:80])
    return float(value)  # type: ignore[arg-type]


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, found {value!r}"[:80])
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, found {type(value).__name__}")
    return value


def _moment(value: object) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError("a time without a time zone")
    return moment



# -- where reports live ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RawReport:
    """A report as found: its bytes (None if they could not be read) and its age."""

    key: str
    data: bytes | None
    age_s: float
    problem: str | None = None
    #: The file's owner, when the backend has one (a report must belong to its writer).
    owner: int | None = None


class ReportSink(Protocol):
    """Where one store's reports are written and read."""

    where: str
    #: True when ages come from one shared clock (the Redis server's), never a host's.
    shared_clock: bool
    store_id: str

    def write(self, report: ReaderReport) -> None: ...
    def remove(self, reader_id: str) -> None: ...
    def read_all(self) -> list[RawReport]: ...
    def delete(self, key: str) -> None: ...
    def trusted_owner(self, owner: int | None, report: ReaderReport) -> bool: ...


_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class FileReportSink:
    """One file per reader in ``<name>.readers/`` beside the data file.

    Each is opened relative to the folder, never through a symlink, only if it is a
    regular file, without blocking; written as a temporary file renamed over the old
    one; with the data file's owner, group and permission bits. A reader given
    ``$MODELBOARD_READERS_DIR`` writes there instead (observers read both).
    """

    shared_clock = False

    def __init__(self, data_file: Path, readers_dir: str | None = None) -> None:
        self.data_file = data_file
        self.store_id = str(data_file)
        self.folder = data_file.with_name(data_file.name + ".readers")
        self.extra = Path(readers_dir) if readers_dir else None
        self.where = str(self.extra or self.folder)

    def _open_folder(self, folder: Path, *, create: bool) -> Folder:
        """The report folder, opened from its parent without following links (OSError as is).

        With ``create``, the folder beside the data file is made when missing, but only
        while the data file is there: a folder being removed stays removed.
        """
        if folder == self.extra:
            return Folder(folder)
        with Folder(folder.parent) as parent:
            like = None
            if create:
                status = parent.lstat(self.data_file.name)
                if status is None:
                    raise FileNotFoundError(errno.ENOENT, "no data file", str(self.data_file))
                like = Ownership.of(status)
            return parent.subfolder(folder.name, create_like=like)

    def _like(self, folder: Path) -> Ownership:
        """A report's owner, group and bits: the data file's beside it; elsewhere, ours
        with the data file's bits (0600 when it is missing)."""
        try:
            data = Ownership.of(os.stat(self.data_file))
        except OSError:
            return Ownership.private()
        if folder == self.extra:
            return Ownership(os.geteuid(), os.getegid(), data.mode)
        return data

    def _model(self) -> tuple[int, tuple[int, int] | None]:
        """The data file's permission bits and owner (0600 and ours when it is missing)."""
        try:
            status = os.stat(self.data_file)
        except OSError:
            return 0o600, None
        return stat.S_IMODE(status.st_mode) & 0o666, (status.st_uid, status.st_gid)

    def write(self, report: ReaderReport) -> None:
        try:
            self._write(report)
        except FileNotFoundError:
            self._write(report)  # the last other reader removed the folder meanwhile

    def _write(self, report: ReaderReport) -> None:
        path = self.extra or self.folder
        with self._open_folder(path, create=self.extra is None) as folder:
            name = f"{report.id}.json"
            temp = f".{name}.{os.urandom(4).hex()}.tmp"
            out = folder.create(temp, self._like(path))
            try:
                try:
                    write_all(out, report.to_bytes())
                finally:
                    os.close(out)
                folder.replace(temp, name)
            except BaseException:
                with contextlib.suppress(OSError):
                    folder.unlink(temp)
                raise

    def remove(self, reader_id: str) -> None:
        folder = self.extra or self.folder
        with contextlib.suppress(OSError, ConfigurationError), \
                self._open_folder(folder, create=False) as opened:
            opened.unlink(f"{reader_id}.json")
        if folder == self.folder:
            with contextlib.suppress(OSError):  # the last reader leaves no empty folder behind
                os.rmdir(folder)

    def _folders(self) -> list[Path]:
        return [self.folder] + ([self.extra] if self.extra and self.extra != self.folder else [])

    def read_all(self) -> list[RawReport]:
        found: list[RawReport] = []
        for folder in self._folders():
            try:
                opened = self._open_folder(folder, create=False)
            except FileNotFoundError:
                continue
            except (OSError, ConfigurationError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                found.append(RawReport(str(folder), None, 0.0,
                                       f"cannot open the folder: {reason}"))
                continue
            with opened:
                found.extend(self._read_folder(folder, opened.fd))
        return found

    def _read_folder(self, folder: Path, fd: int) -> Iterator[RawReport]:
        now = time.time()
        for name in sorted(os.listdir(fd)):
            key = str(folder / name)
            if name.startswith("."):
                self._sweep(name, fd, now)
                continue
            try:
                handle = os.open(name, os.O_RDONLY | _OPEN_FLAGS, dir_fd=fd)
            except OSError as exc:
                reason = ("a symlink" if exc.errno == errno.ELOOP
                          else f"cannot open: {exc.strerror}")
                yield RawReport(key, None, 0.0, reason)
                continue
            try:
                status = os.fstat(handle)
                age = max(0.0, now - status.st_mtime)
                if not stat.S_ISREG(status.st_mode):
                    yield RawReport(key, None, age, "not a regular file")
                    continue
                data = os.read(handle, MAX_REPORT_BYTES + 1)
            except OSError as exc:
                yield RawReport(key, None, 0.0, f"cannot read: {exc.strerror}")
                continue
            finally:
                os.close(handle)
            yield RawReport(key, data, age, owner=status.st_uid)

    def _sweep(self, name: str, fd: int, now: float) -> None:
        """A temp file a killed reader left behind, a minute old or more: remove it."""
        if not name.endswith(".tmp"):
            return
        with contextlib.suppress(OSError):
            if now - os.stat(name, dir_fd=fd, follow_symlinks=False).st_mtime > 60:
                os.unlink(name, dir_fd=fd)

    def delete(self, key: str) -> None:
        path = Path(key)
        with contextlib.suppress(OSError, ConfigurationError), \
                self._open_folder(path.parent, create=False) as opened:
            opened.unlink(path.name)

    def trusted_owner(self, owner: int | None, report: ReaderReport) -> bool:
        # A report belongs to the user it names; root writes as the data file's owner.
        if owner is None or owner == report.uid:
            return True
        _mode, data_owner = self._model()
        return report.uid == 0 and data_owner is not None and owner == data_owner[0]


class RedisReportSink:
    """One key per reader under the store's prefix, expiring after an hour of silence.

    A report's age is the expiry minus the key's remaining time to live, both kept by
    the Redis server: no host's clock enters into it.
    """

    shared_clock = True

    def __init__(self, client: Any, prefix: str, location: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:reader:"
        self.store_id = prefix
        self.where = f"{location} ({self._prefix}*)"

    def write(self, report: ReaderReport) -> None:
        self._client.set(self._prefix + report.id, report.to_bytes(), ex=int(DEAD_AFTER_S))

    def remove(self, reader_id: str) -> None:
        self._client.delete(self._prefix + reader_id)

    def read_all(self) -> list[RawReport]:
        import redis

        try:
            pattern = _glob_escape(self._prefix) + "*"
            keys = sorted(self._client.scan_iter(match=pattern, count=1000))
            if not keys:
                return []
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
                pipe.pttl(key)
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise BackendUnavailableError(
                f"{self.where}: cannot read the reader reports: {exc}") from None
        found = []
        for index, key in enumerate(keys):
            data, ttl = replies[2 * index], replies[2 * index + 1]
            name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
            if data is None:
                continue  # expired between the scan and the read
            age = DEAD_AFTER_S - ttl / 1000 if isinstance(ttl, int) and ttl >= 0 else 0.0
            found.append(RawReport(name, bytes(data), max(0.0, age)))
        return found

    def delete(self, key: str) -> None:
        self._client.delete(key)

    def trusted_owner(self, owner: int | None, report: ReaderReport) -> bool:
        return True


def _glob_escape(text: str) -> str:
    """``text`` matched literally by SCAN's MATCH pattern (a prefix may hold ``*`` or ``[``)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def sink_for(backend: Backend) -> ReportSink | None:
    """Where ``backend``'s readers report, or None for a backend that has no such place."""
    from .filebackend import FileBackend

    if isinstance(backend, FileBackend):
        return FileReportSink(backend.target, os.environ.get(READERS_DIR_ENV_VAR) or None)
    client = getattr(backend, "client", None)
    keys = getattr(backend, "keys", None)
    if client is not None and keys is not None:
        return RedisReportSink(client, keys.prefix, backend.location)
    return None

