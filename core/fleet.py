"""The fleet: every watching store reports which revision it serves; observers judge them.

A reader (a proxy process with a watching store) writes a small report, its heartbeat,
whenever it reloads and otherwise every ``heartbeat_s`` seconds, from a thread of its
own: never on the request path, and a report that cannot be written never fails the
store (it is logged once and retried). An observer (``modelboard fleet``, the editor,
``--wait``, ``store.readers()``) reads every report and judges each with one function,
:func:`judge`: ``current``, ``behind``, ``stale``, ``error`` or ``unreadable``.

Where reports live, and what one holds, is ``fleetreports``: for a file, one file per
process in ``<name>.readers/`` beside the data file (or in ``$MODELBOARD_READERS_DIR``);
for Redis, one key per process under the store's prefix, with an expiry. How old a
heartbeat is comes from the backend's clock (the file's mtime, set by the kernel; the
key's remaining time to live, kept by the Redis server) and, for an observer that looks
more than once, from each report's own sequence number as it moves: a reader whose host
clock is off is never judged by it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .actor import host_name
from .fleetreports import (
    DEAD_AFTER_S,
    READERS_DIR_ENV_VAR,
    FileReportSink,
    ReaderReport,
    ReportSink,
    clean_text,
    safe_id,
    sink_for,
)
from .logs import logger
from .models import HistoryEntry

if TYPE_CHECKING:
    from .store import SelectionStore

__all__ = [
    "DEAD_AFTER_S",
    "HEARTBEAT_ENV_VAR",
    "READERS_DIR_ENV_VAR",
    "REPORT_ENV_VAR",
    "STALE_AFTER_BEATS",
    "Fleet",
    "Reader",
    "ReaderReport",
    "Status",
    "judge",
    "summary",
]

log = logger(__name__)

#: Seconds between heartbeats (``$MODELBOARD_HEARTBEAT_S`` overrides, e.g. in tests).
HEARTBEAT_S = 5.0
HEARTBEAT_ENV_VAR = "MODELBOARD_HEARTBEAT_S"
#: A reader is stale after this many heartbeats missed.
STALE_AFTER_BEATS = 3
REPORT_ENV_VAR = "MODELBOARD_REPORT"
#: How many history entries an observer reads to count how far behind a reader is.
HISTORY_LOOKBACK = 1000

Status = Literal["current", "behind", "stale", "error", "unreadable"]
STATUSES: tuple[Status, ...] = ("current", "behind", "stale", "error", "unreadable")


def heartbeat_interval() -> float:
    """The heartbeat interval: ``$MODELBOARD_HEARTBEAT_S`` if it is a positive number."""
    text = os.environ.get(HEARTBEAT_ENV_VAR, "")
    try:
        value = float(text)
    except ValueError:
        return HEARTBEAT_S
    return value if 0.01 <= value <= 3600 else HEARTBEAT_S


def reporting_enabled(report: bool) -> bool:
    return report and os.environ.get(REPORT_ENV_VAR, "1").strip().lower() not in (
        "0", "false", "no", "off")


def program_name() -> str:
    """The default reader name: the program that runs (``gunicorn``, ``modelboard`` ...)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else sys.executable
    return clean_text(Path(argv0).name) or "python"



def _version() -> str:
    """modelboard's version (looked up once, by the first heartbeat: it takes milliseconds)."""
    try:
        from . import __version__
    except Exception:  # e.g. privileges dropped after import: the standard
        return "unknown"  # library may no longer be readable; a report must still go out
    return __version__


# -- the judgement -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reader:
    """A report as an observer judges it (``store.readers()`` returns these)."""

    #: Where the report was found (a file name or a Redis key).
    key: str
    status: Status
    report: ReaderReport | None
    #: Seconds since its last heartbeat, as well as the observer can tell.
    age_s: float
    #: For ``behind``: how many changes it misses (None: more than the history shows).
    behind_changes: int | None = None
    #: For ``behind``: when the first change it misses was made.
    behind_since: datetime | None = None
    #: For ``unreadable``: why.
    problem: str | None = None

    @property
    def live(self) -> bool:
        """Not stale: it sent a heartbeat within the last three intervals."""
        return self.status != "stale"

    @property
    def label(self) -> str:
        """``proxy-eu-3 (host-3, pid 77)``, or the key of an unreadable report."""
        if self.report is None:
            return self.key
        return f"{self.report.name} ({self.report.host}, pid {self.report.pid})"

    def describe(self, *, now: datetime | None = None) -> str:
        """The status with its detail: ``behind by 2 changes for 3m``, ``stale (12 s)``."""
        if self.status == "behind":
            count = (f"{self.behind_changes} change{'s' * (self.behind_changes != 1)}"
                     if self.behind_changes is not None else "many changes")
            since = self.behind_since
            moment = now or utc_now()
            age = f" for {duration((moment - since).total_seconds())}" if since else ""
            return f"behind by {count}{age}"
        if self.status == "stale":
            return f"stale (no heartbeat for {duration(self.age_s)})"
        if self.status == "error" and self.report is not None:
            return f"error: {self.report.load_error}"
        if self.status == "unreadable":
            return f"unreadable: {self.problem}"
        return self.status

    def to_json(self) -> dict[str, Any]:
        report = self.report.to_json() if self.report is not None else None
        if report is not None:
            del report["format"], report["format_version"]
        return {
            "key": self.key, "status": self.status, "age_s": round(self.age_s, 3),
            "behind_changes": self.behind_changes,
            "behind_since": self.behind_since.isoformat() if self.behind_since else None,
            "problem": self.problem, "report": report,
        }


def utc_now() -> datetime:
    return datetime.now(UTC)


def duration(seconds: float) -> str:
    """A short duration: ``4.2 s``, ``12 s``, ``3m``, ``2h05m``, ``3d04h``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:02.0f}h"


def judge(report: ReaderReport, *, age_s: float, latest_revision: str,
          history: Sequence[HistoryEntry] = ()) -> tuple[Status, int | None, datetime | None]:
    """The status of one reader: the one rule every view of the fleet uses.

    ``stale``: no heartbeat for three of its intervals (hung, stopped or killed; what it
    said last is no longer evidence). ``error``: it has a load error. ``current``: it
    serves ``latest_revision``. ``behind``: it serves an older one; then also how many
    changes it misses and since when, counted in ``history`` (newest first).
    """
    if age_s > STALE_AFTER_BEATS * report.interval_s:
        return "stale", None, None
    if report.load_error is not None:
        return "error", None, None
    if report.revision == latest_revision:
        return "current", None, None
    missed: set[str] = set()
    since: datetime | None = None
    for entry in history:
        if entry.revision == report.revision:
            return "behind", len(missed), since
        missed.add(entry.revision)
        since = entry.time
    return "behind", None, since


def summary(readers: Sequence[Reader]) -> str:
    """``8 readers: 7 current, 1 behind``."""
    counts = {status: sum(r.status == status for r in readers) for status in STATUSES}
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
    noun = "reader" if len(readers) == 1 else "readers"
    return f"{len(readers)} {noun}: " + (", ".join(parts) if parts else "none reporting")


# -- the reader side: the heartbeat ------------------------------------------------------------
_reporters: weakref.WeakSet[Reporter] = weakref.WeakSet()


class Reporter:
    """A store's heartbeat: writes its report on every reload and every ``interval_s``.

    Runs in a daemon thread of its own, started with the store's first watch and
    stopped by ``close()`` (which removes the report); a store that stops watching keeps
    reporting, with ``watching`` false. After ``fork()`` the child reports as itself.
    """

    def __init__(self, store: SelectionStore, sink: ReportSink, *, name: str | None,
                 interval_s: float | None = None) -> None:
        self._store = weakref.ref(store)
        self.sink = sink
        self.name = clean_text(name or "") or program_name()
        self.interval_s = interval_s or heartbeat_interval()
        self._host = host_name()
        self._new_identity()
        self._revision = store.snapshot.revision
        self._loaded_at = utc_now()
        self._warnings: tuple[str, ...] = ()
        self._warnings_for: str | None = None  # the revision _warnings were computed for
        _reporters.add(self)

    def _new_identity(self) -> None:
        self.id = safe_id(f"{self._host.split('.')[0]}-{os.getpid()}-{os.urandom(3).hex()}")
        self._started_at = utc_now()
        self._sequence = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._written = False

    def start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="modelboard-report",
                                            daemon=True)
            self._thread.start()

    def poke(self) -> None:
        """The store reloaded or changed state: report now (costs one Event.set)."""
        store = self._store()
        if store is not None and store.snapshot.revision != self._revision:
            self._revision = store.snapshot.revision
            self._loaded_at = utc_now()
        self._wake.set()

    def stop(self) -> None:
        """Stop the heartbeat and remove the report."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if self._written:
            try:
                self.sink.remove(self.id)
            except Exception as exc:  # a server gone at shutdown: the report expires anyway
                log.debug("could not remove the reader report %s: %s", self.id, exc)
            self._written = False

    def report(self) -> ReaderReport | None:
        store = self._store()
        if store is None:
            return None
        if self._warnings_for != self._revision:
            self._warnings = tuple(store.warnings())
            self._warnings_for = self._revision
        error = store.load_error
        self._sequence += 1
        return ReaderReport(
            id=self.id, host=self._host, pid=os.getpid(), name=self.name,
            store=self.sink.store_id, revision=self._revision, loaded_at=self._loaded_at,
            load_error=clean_text(str(error), 2000) if error is not None else None,
            warnings=self._warnings[:20], watching=store.watching, version=_version(),
            started_at=self._started_at, sequence=self._sequence,
            interval_s=self.interval_s, uid=os.geteuid(), written_at=utc_now())

    def beat(self) -> bool:
        """Write the report once; log the first failure of a streak, and the recovery."""
        report = self.report()
        if report is None:
            return False
        try:
            self.sink.write(report)
        except Exception as exc:
            if not self._failing:
                self._failing = True
                hint = ""
                if isinstance(exc, PermissionError | OSError) and not os.environ.get(
                        READERS_DIR_ENV_VAR) and isinstance(self.sink, FileReportSink):
                    hint = f"; set {READERS_DIR_ENV_VAR} to a folder this user can write"
                log.warning("%s: cannot report this reader (%s)%s; retrying every %.0f s",
                            self.sink.where, getattr(exc, "strerror", None) or exc, hint,
                            self.interval_s)
            return True
        self._written = True
        if self._failing:
            self._failing = False
            log.info("%s: reporting this reader again", self.sink.where)
        return True

    def _run(self) -> None:
        wake, stop = self._wake, self._stop
        while not stop.is_set():
            wake.clear()
            if not self.beat():
                return
            wake.wait(self.interval_s)

    def _after_fork_in_child(self) -> None:
        running = self._thread is not None
        self._written = False  # the parent's report is the parent's to remove
        self._new_identity()
        if running:
            self.start()


def _rearm_after_fork() -> None:
    for reporter in list(_reporters):
        reporter._after_fork_in_child()


def _remove_reports_at_exit() -> None:
    for reporter in list(_reporters):
        reporter.stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rearm_after_fork)
atexit.register(_remove_reports_at_exit)


def reporter_for(store: SelectionStore, *, report: bool,
                 reader_name: str | None) -> Reporter | None:
    """The store's heartbeat, or None when reporting is off or the backend has no place."""
    if not reporting_enabled(report):
        return None
    sink = sink_for(store.backend)
    return Reporter(store, sink, name=reader_name) if sink is not None else None


# -- the observer side -------------------------------------------------------------------------
@dataclass
class _Seen:
    sequence: int
    first_seen: float
    moved: bool


@dataclass
class Fleet:
    """Reads a store's reports and judges them; keeps what it saw to follow sequences.

    An observer that looks more than once (the editor, ``--wait``) judges a report's
    age by when its sequence last moved, on its own monotonic clock, so a reader whose
    host clock is off is never judged by it.
    """

    store: SelectionStore
    sink: ReportSink | None = None
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sink is None:
            self.sink = sink_for(self.store.backend)

    def readers(self, *, confirm: bool = False) -> list[Reader]:
        """Every report with its status, sorted by name, host and pid.

        ``confirm`` (for a one-time look): a report that looks stale by a clock that is
        not shared (another host's file) gets a second look one heartbeat later, and
        is live if its sequence moved meanwhile.
        """
        readers = self._look()
        if confirm:
            doubtful = [r for r in readers if r.status == "stale" and r.report is not None
                        and not self.sink_shares_clock(r.report)
                        and r.age_s < DEAD_AFTER_S]
            if doubtful:
                time.sleep(min(10.0, max(r.report.interval_s for r in doubtful
                                         if r.report is not None) * 1.2))
                readers = self._look()
        return readers

    def sink_shares_clock(self, report: ReaderReport) -> bool:
        assert self.sink is not None
        return self.sink.shared_clock or report.host == host_name()

    def _look(self) -> list[Reader]:
        sink = self.sink
        if sink is None:
            return []
        store = self.store
        if not store.watching:
            with contextlib.suppress(Exception):
                store._refresh()
        latest = store.snapshot.revision
        now = time.monotonic()
        history: list[HistoryEntry] | None = None
        readers: list[Reader] = []
        seen_keys: set[str] = set()
        for raw in sink.read_all():
            seen_keys.add(raw.key)
            if raw.data is None:
                readers.append(Reader(raw.key, "unreadable", None, raw.age_s,
                                      problem=raw.problem))
                continue
            try:
                report = ReaderReport.from_bytes(raw.data)
                if raw.key.rsplit("/", 1)[-1].rsplit(":", 1)[-1] not in (
                        report.id, f"{report.id}.json"):
                    raise ValueError("its name does not match the reader it describes")
                if not sink.trusted_owner(raw.owner, report):
                    raise ValueError("written by another user than the reader it names")
            except ValueError as exc:
                if raw.age_s > DEAD_AFTER_S:
                    self.clean_text(raw.key)
                    continue
                readers.append(Reader(raw.key, "unreadable", None, raw.age_s,
                                      problem=str(exc)))
                continue
            if report.store != sink.store_id:
                if isinstance(sink, FileReportSink) and raw.key.startswith(str(sink.folder)):
                    readers.append(Reader(raw.key, "unreadable", None, raw.age_s,
                                          problem=f"a report for another store ({report.store})"))
                continue  # a shared $MODELBOARD_READERS_DIR holds other stores' readers
            age = self._age(raw.key, report, raw.age_s, now)
            if age > DEAD_AFTER_S:
                self.clean_text(raw.key)
                continue
            if report.revision != latest and report.load_error is None and history is None:
                try:
                    history = store.history(limit=HISTORY_LOOKBACK)
                except Exception:
                    history = []
            status, changes, since = judge(report, age_s=age, latest_revision=latest,
                                           history=history or ())
            readers.append(Reader(raw.key, status, report, age, changes, since))
        for key in set(self._seen) - seen_keys:
            del self._seen[key]
        readers.sort(key=lambda r: (r.report is None, r.report.name if r.report else r.key,
                                    r.report.host if r.report else "",
                                    r.report.pid if r.report else 0))
        return readers

    def _age(self, key: str, report: ReaderReport, clock_age: float, now: float) -> float:
        seen = self._seen.get(key)
        if seen is None or seen.sequence != report.sequence:
            moved = seen is not None
            self._seen[key] = _Seen(report.sequence, now, moved)
            return 0.0 if moved else clock_age
        watched = now - seen.first_seen
        if seen.moved:
            return watched  # when its sequence last moved, by our own clock alone
        return max(clock_age, watched)

    def clean_text(self, key: str) -> None:
        if self.store.read_only or self.sink is None:
            return
        try:
            self.sink.delete(key)
            log.info("removed the report of a reader silent for over an hour: %s", key)
        except Exception as exc:
            log.debug("could not remove %s: %s", key, exc)

    def wait_for(self, revision: str, *, timeout_s: float, poll_s: float = 0.02) -> Waited:
        """Wait until every live reader serves ``revision`` (or a later one).

        Unreadable reports never count as having reached it; stale readers are not live
        and do not count either way.
        """
        began = time.monotonic()
        while True:
            readers = self.readers()
            accepted = self._at_or_after(revision)
            behind = [r for r in readers if r.live and not _serves(r, accepted)]
            waited = time.monotonic() - began
            if not behind or waited >= timeout_s:
                live = [r for r in readers if r.live]
                return Waited(not behind, waited, len(live) - len(behind), len(live), behind)
            time.sleep(poll_s)

    def _at_or_after(self, revision: str) -> set[str]:
        """``revision`` and those written after it (another writer may have followed)."""
        if self.store.snapshot.revision == revision:
            return {revision}
        later = {revision}
        try:
            history = self.store.history(limit=HISTORY_LOOKBACK)
        except Exception:
            return later
        for entry in history:
            if entry.revision == revision:
                return later
            later.add(entry.revision)
        return {revision}


@dataclass(frozen=True, slots=True)
class Waited:
    """How a wait for a revision ended."""

    reached: bool
    seconds: float
    #: Live readers that serve it, of how many live readers.
    count: int
    total: int
    #: The live readers that do not (or whose report cannot be trusted).
    laggards: list[Reader]


def _serves(reader: Reader, revisions: set[str]) -> bool:
    return (reader.status != "unreadable" and reader.report is not None
            and reader.report.revision in revisions)
