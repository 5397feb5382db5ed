"""The file store's history: one JSON line per provider change, written ahead of the data file.

``model_selections.history.jsonl`` beside ``model_selections.json`` holds one line per
provider a write changed (a write of three providers is three lines, appended in one
``write``). A line carries, besides what it always did (``time``, ``actor``, ``provider``,
``action``, ``old``, ``new``, ``revision`` — the document's content hash after the write,
and ``reason``):

- ``rev``: the revision number, 1, 2, 3 … per store; every line of one write has the same;
- ``base_revision``: the content hash of the document the write was made on;
- ``before`` / ``after``: the provider's whole entry before and after (null when absent),
  so that any revision still in the history can be rebuilt and rolled back to;
- ``prev`` and ``hash``: a hash chain. ``hash`` is the SHA-256 of the line without its
  final ``, "hash": "…"`` member, and ``prev`` is the ``hash`` of the line before; the
  first chained line has ``prev`` = ``genesis:`` + the SHA-256 of whatever the file held
  before it (older, unchained lines: still read, and covered by that one hash).

Exactly once, under SIGKILL at any moment: a writer, holding the writers' lock, writes the
new document to its temp file, appends and fsyncs its lines, and only then renames the
temp file over the data file. So every change that reached the data file has its lines.
The next writer (under the lock) looks at the last line: if the data file is still at
that write's ``base_revision`` the write never landed, and it appends a ``not-applied``
record naming the revision number; if the file is at neither, someone edited it by hand,
and it appends ``external`` lines (what changed, provider by provider, when the backup
shows what the document was) so that the history still explains the document. Readers
leave out the lines of a revision marked not applied.

A failed or short append is cut back to the length the file had before it, so no fragment
is left, and the write is refused (nothing is renamed). A fragment left anyway (by an
older version, or by hand) is skipped by readers, which pick up at the next line, even
one glued onto the fragment; a writer cuts a trailing fragment off before appending.

Rotation: before an append that finds the file at ``rotate_bytes`` (64 MiB) or more,
the file is renamed to ``<name>.history.<N>.jsonl`` (N = 1, 2, 3 …), gzip-compressed to
``<name>.history.<N>.jsonl.gz``, and the newest ``keep_segments`` (8) compressed segments
are kept; older ones are deleted. The chain goes on across segments (the new file's
first line has the ``hash`` of the old one's last line as its ``prev``).

Reading with a limit starts from the end of the file, a block at a time, so
``history --limit 5`` costs the same with a million lines behind it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .fileformat import _selection_from_json, render_document, revision_of_bytes
from .logs import logger
from .models import HistoryEntry, Selection
from .safefiles import KeptOpen, close_if_still, signature, write_all

__all__ = [
    "KEEP_SEGMENTS",
    "ROTATE_BYTES",
    "HistoryFile",
    "Revision",
    "Verification",
    "document_at",
    "genesis_of",
    "group_revisions",
    "seal_chain",
    "seal_of",
    "sealed_lines",
    "stamp_entries",
    "verify_chain",
]

log = logger(__name__)

ROTATE_BYTES = 64 * 1024 * 1024
KEEP_SEGMENTS = 8
#: How much is read at a time when reading from the end.
BLOCK_BYTES = 64 * 1024
FIRST_BLOCK_BYTES = 4096
GENESIS = "genesis:"
NOT_APPLIED = "not-applied"
EXTERNAL = "external"
#: The actor of a change found in the file that no modelboard writer recorded.
OUTSIDE = "outside modelboard"
_SEAL = re.compile(rb', "hash": "([0-9a-f]{64})"\}$')
#: Where a line glued onto a fragment starts (lines are written with sorted keys).
_LINE_START = b'{"action": '


def open_history(path: Path, flags: int, mode: int) -> int:
    """Open a history file: never through a symlink, never blocking, only a regular file.

    The one place the history opens its files, so that the store's safe sidecar-file
    opening can take over here alone.
    """
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigurationError("is not a regular file; the history must be one",
                                     path=str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seal(record: Mapping[str, Any], prev: str) -> bytes:
    """A record as a chained line (no newline): its JSON with ``prev``, then its ``hash``."""
    return _sealed(record, prev)[0]


def _sealed(record: Mapping[str, Any], prev: str) -> tuple[bytes, str]:
    """:func:`seal`'s line and the hash it ends with (the next line's ``prev``)."""
    body = json.dumps({**record, "prev": prev}, ensure_ascii=False, sort_keys=True)
    digest = _sha256(body.encode("utf-8"))
    return f'{body[:-1]}, "hash": "{digest}"}}'.encode(), digest


def _seal_of(line: bytes) -> tuple[bytes, str] | None:
    """(the hashed part, the hash it claims) of a chained line, or None if it has no seal."""
    match = _SEAL.search(line)
    if match is None:
        return None
    return line[:match.start()] + b"}", match.group(1).decode()


def _parse(line: bytes) -> dict[str, Any] | None:
    """A line's record; a line glued onto a fragment is found after it; None if neither."""
    start = 0
    while True:
        try:
            record = json.loads(line[start:])
        except ValueError:
            record = None
        if isinstance(record, dict):
            return record
        start = line.find(_LINE_START, start + 1)
        if start < 0:
            return None


def _state_json(selection: Selection | None) -> dict[str, Any] | None:
    return selection.to_json() if selection is not None else None


def seal_chain(records: Iterable[Mapping[str, Any]], prev: str) -> tuple[list[bytes], str]:
    """``records`` as chained lines (no newlines) following ``prev``, and the last line's hash
    (what the next line's ``prev`` is): how every history, file or Redis, is appended."""
    lines = []
    for record in records:
        line, prev = _sealed(record, prev)
        lines.append(line)
    return lines, prev


def seal_of(line: bytes) -> str | None:
    """The hash a chained line claims (what the line after it has as ``prev``), or None."""
    sealed = _seal_of(line)
    return sealed[1] if sealed is not None else None


def genesis_of(before: bytes) -> str:
    """The ``prev`` of the first chained line, given the (unchained) lines before it."""
    return GENESIS + _sha256(before)


def sealed_lines(entries: Iterable[HistoryEntry]) -> bytes:
    """``entries`` (oldest first) as a new history file's lines, chained from its genesis."""
    lines, _last = seal_chain((entry.to_json() for entry in entries), genesis_of(b""))
    return b"".join(line + b"\n" for line in lines)


def stamp_entries(entries: Iterable[HistoryEntry], *, number: int, base_revision: str | None,
                  revision: str, before: Mapping[str, Selection],
                  after: Mapping[str, Selection]) -> list[HistoryEntry]:
    """The entries of one write with its number, both revisions and each provider's states."""
    return [replace(entry, number=number, base_revision=base_revision, revision=revision,
                    before=_state_json(before.get(entry.provider)),
                    after=_state_json(after.get(entry.provider)), has_states=True)
            for entry in entries]


# -- revisions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Revision:
    """One write: its number (None for lines older than numbering), who, when, why, what."""

    number: int | None
    revision: str
    base_revision: str | None
    time: datetime
    actor: str
    reason: str | None
    entries: tuple[HistoryEntry, ...]

    @property
    def complete(self) -> bool:
        """Whether every entry says what its provider was before and after (rebuildable)."""
        return all(e.provider != "*" and e.has_states for e in self.entries)

    def summary(self) -> str:
        """What changed, on one line: per provider, from its first state to its last."""
        if self.complete:
            return "; ".join(self._net_changes())
        parts = []
        for entry in self.entries:
            if entry.provider == "*":
                parts.append("edited outside modelboard (what changed is not known)")
            elif entry.action == "remove":
                parts.append(f"{entry.provider}: {entry.old} removed")
            elif entry.action in ("lock", "unlock"):
                parts.append(f"{entry.provider}: {entry.action}ed")
            elif entry.old is None:
                parts.append(f"{entry.provider}: set to {entry.new}")
            elif entry.new is None:
                parts.append(f"{entry.provider}: {entry.old} removed")
            elif entry.old == entry.new:
                parts.append(f"{entry.provider}: {entry.action}")
            else:
                parts.append(f"{entry.provider}: {entry.old} -> {entry.new}")
        return "; ".join(parts)

    def summary_and_reason(self) -> str:
        """The summary, and the reason in brackets when one was given (``modelboard log``)."""
        return self.summary() + (f" ({self.reason})" if self.reason else "")

    def _net_changes(self) -> list[str]:
        first: dict[str, Mapping[str, Any] | None] = {}
        last: dict[str, Mapping[str, Any] | None] = {}
        for entry in self.entries:
            first.setdefault(entry.provider, entry.before)
            last[entry.provider] = entry.after
        parts = []
        for provider, before in first.items():
            after = last[provider]
            if before is None and after is None:
                continue
            if before is None:
                assert after is not None
                locked = "" if after.get("editable", True) else " (locked)"
                parts.append(f"{provider}: set to {after.get('model_name')}{locked}")
            elif after is None:
                parts.append(f"{provider}: {before.get('model_name')} removed")
            else:
                model = (f"{before.get('model_name')} -> {after.get('model_name')}"
                         if before.get("model_name") != after.get("model_name") else "")
                lock = ""
                if before.get("editable", True) != after.get("editable", True):
                    lock = "unlocked" if after.get("editable", True) else "locked"
                parts.append(f"{provider}: " + (", ".join(p for p in (model, lock) if p)
                                                or "updated"))
        return parts


def group_revisions(entries: Iterable[HistoryEntry]) -> Iterator[Revision]:
    """History entries (newest first) gathered into revisions (newest first), lazily.

    Lines of one write are consecutive; lines older than numbering are gathered by
    their content hash.
    """
    group: list[HistoryEntry] = []

    def close() -> Revision:
        newest = group[0]
        reason = next((e.reason for e in group if e.reason), None)
        revision = Revision(newest.number, newest.revision, newest.base_revision,
                            newest.time, newest.actor, reason, tuple(reversed(group)))
        group.clear()
        return revision

    for entry in entries:
        if group and ((entry.number, entry.revision) != (group[0].number, group[0].revision)):
            yield close()
        group.append(entry)
    if group:
        yield close()


def _selection_of(provider: str, state: Mapping[str, Any] | None) -> Selection | None:
    if state is None:
        return None
    return _selection_from_json(provider, dict(state))


def document_at(number: int, current: Mapping[str, Selection], current_revision: str,
                revisions: Sequence[Revision], *,
                revision_of: Callable[[Mapping[str, Selection]], str] | None = None,
                ) -> dict[str, Selection]:
    """The whole document as of revision ``number``, rebuilt from ``current`` backwards.

    ``revisions`` are newest first and must reach from the current document's revision
    down to ``number``. ``revision_of`` is the backend's content hash (default: the file
    document's). Raises ConfigurationError (one line saying why) if the history cannot
    say what the document was.
    """
    by_number = [r for r in revisions if r.number is not None]
    if not by_number or number > by_number[0].number or number < 1:  # type: ignore[operator]
        newest = by_number[0].number if by_number else 0
        raise ConfigurationError(f"there is no revision {number} (the newest is {newest})")

    def recorded(document: Mapping[str, Selection], revision: str) -> str | None:
        """None if ``document`` is at ``revision``, else the revision it is at. A revision
        recorded on the file and carried over by ``migrate`` is the file's hash."""
        own = revision_of(document) if revision_of is not None else None
        if own == revision:
            return None
        as_file = revision_of_bytes(render_document(document))
        return None if as_file == revision else (own or as_file)

    if revisions[0].revision != current_revision and \
            recorded(current, revisions[0].revision) is not None:
        raise ConfigurationError(
            f"the document changed outside modelboard since revision {revisions[0].number}; "
            "the next write records that edit, then revisions can be rebuilt again")
    document = dict(current)
    for rev in revisions:
        if rev.number == number:
            rebuilt = recorded(document, rev.revision)
            if rebuilt is not None:
                raise ConfigurationError(
                    f"revision {number} cannot be rebuilt exactly from the history "
                    f"(got {rebuilt}, the history says {rev.revision})")
            return document
        if rev.number is None or not rev.complete:
            raise ConfigurationError(
                f"revision {number} is older than what the history can rebuild: revision "
                f"{rev.number if rev.number is not None else '(unnumbered)'} does not record "
                "what it replaced")
        for entry in reversed(rev.entries):
            before = _selection_of(entry.provider, entry.before)
            if before is None:
                document.pop(entry.provider, None)
            else:
                document[entry.provider] = before
    oldest = by_number[-1].number
    raise ConfigurationError(f"revision {number} is no longer in the history "
                             f"(the oldest kept is {oldest})")


# -- verification ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of ``audit verify``: how much was checked, and the first broken link."""

    revisions: int
    lines: int
    segments: int
    problem: str | None = None
    #: Where the problem is: (segment file name, line number).
    where: tuple[str, int] | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(files: Sequence[tuple[str, bytes]], *, anchored: bool = True,
                 notes: Sequence[str] = ()) -> Verification:
    """Walk chained lines (``files``: each a name and its whole text) and stop at the first
    broken link; what ``audit verify`` reports, for the file history and the Redis stream.

    ``anchored``: the oldest line kept is the start of the history (nothing was dropped
    before it), so its ``prev`` must be the recorded genesis.
    """
    notes = list(notes)
    prev: str | None = None  # None: the chain has not started
    legacy = b""
    revisions: set[int] = set()
    unnumbered = 0
    last_number = 0
    lines = 0
    previous_key: tuple[object, object] | None = None
    damaged = 0

    def broken(name: str, number: int, problem: str) -> Verification:
        return Verification(len(revisions) + unnumbered, lines, len(files), problem,
                            (name, number), tuple(notes))

    for name, data in files:
        if data and not data.endswith(b"\n"):
            end = data.rfind(b"\n") + 1
            line_number = data.count(b"\n", 0, end) + 1
            return broken(name, line_number, "the last line is unfinished "
                          "(a writer was stopped mid-line); the next write removes it")
        for line_number, line in enumerate(data.split(b"\n")[:-1], start=1):
            lines += 1
            sealed = _seal_of(line)
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if sealed is None and prev is None:
                # Lines from before the chain: covered, as they are, by its genesis.
                legacy += line + b"\n"
                if not isinstance(record, dict):
                    if line.strip():
                        damaged += 1
                    continue
            if not isinstance(record, dict):
                return broken(name, line_number, "not a history line (damaged or "
                              "inserted)")
            if sealed is None:
                if prev is not None:
                    return broken(name, line_number, "has no hash, though the lines "
                                  "before it are chained (inserted or edited)")
                key = (record.get("rev"), record.get("revision"))
                if key != previous_key:
                    unnumbered += 1
                    previous_key = key
                continue
            body, claimed = sealed
            if _sha256(body) != claimed:
                return broken(name, line_number, "its content does not match its hash "
                              "(the line was edited)")
            recorded_prev = record.get("prev")
            if prev is None:
                expected = GENESIS + _sha256(legacy)
                if anchored and recorded_prev != expected:
                    what = ("does not start from the recorded genesis"
                            if not str(recorded_prev).startswith(GENESIS) else
                            "its genesis does not match the lines before it")
                    return broken(name, line_number, f"the chain {what} (lines "
                                  "deleted, inserted or edited before it)")
            elif recorded_prev != prev:
                return broken(name, line_number, "does not follow the line before it "
                              "(a line was deleted, inserted or moved here)")
            prev = claimed
            number = record.get("rev")
            if not isinstance(number, int):
                return broken(name, line_number, "has no revision number")
            if record.get("action") == NOT_APPLIED:
                if number != last_number:
                    return broken(name, line_number, f"marks revision {number} not "
                                  f"applied, but the last revision is {last_number}")
                revisions.discard(number)
                continue
            if last_number and number not in (last_number, last_number + 1):
                return broken(name, line_number, f"revision {number} follows revision "
                              f"{last_number} (a revision is missing or out of order)")
            last_number = number
            revisions.add(number)
    if damaged:
        notes.append(f"{damaged} unreadable line(s) from before the chain started")
    return Verification(len(revisions) + unnumbered, lines, len(files), None, None,
                        tuple(notes))


# -- the file --------------------------------------------------------------------------------
@dataclass(slots=True)
class _Tail:
    """What a writer needs of the history's end."""

    prev: str  # what the next line's ``prev`` is
    number: int  # the last revision number used (0: none yet)
    revision: str | None  # the document revision the history ends at (None: no history)
    last: dict[str, Any] | None  # the last record
    fd: int | None = None  # the history file, open for appending (None: not opened yet)
    size: int = 0  # its length, when open
    kept: bool = False  # fd belongs to the HistoryFile (kept open for the next write)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            if not self.kept:
                os.close(fd)


class HistoryFile:
    """The history file of one data file, its rotated segments, and how to read them."""

    def __init__(self, path: Path, *, rotate_bytes: int = ROTATE_BYTES,
                 keep_segments: int = KEEP_SEGMENTS,
                 opener: Callable[[Path, int, int], int] = open_history) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.keep_segments = keep_segments
        self._open = opener
        name = path.name
        self._stem = name[:-len(".jsonl")] if name.endswith(".jsonl") else name
        self._segment_name = re.compile(re.escape(self._stem) + r"\.(\d+)\.jsonl(\.gz)?$")
        #: The active file as our last append left it: its descriptor, its signature
        #: then, and its tail. A write finding it unchanged skips opening it and reading
        #: its end again (a fifth of a write's time at 10 providers).
        self._kept = KeptOpen()
        self._kept_tail_state: _Tail | None = None
        weakref.finalize(self, self._kept.drop)

    def close(self) -> None:
        """Close the active file kept open between writes, if any."""
        self._kept.drop()

    # -- segments --------------------------------------------------------------------------
    def _segment_path(self, number: int, compressed: bool) -> Path:
        return self.path.with_name(
            f"{self._stem}.{number:06d}.jsonl" + (".gz" if compressed else ""))

    def segments(self) -> list[tuple[int, Path]]:
        """Rotated segments, oldest first (a segment both plain and compressed: the plain)."""
        found: dict[int, Path] = {}
        try:
            names = os.listdir(self.path.parent)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigurationError(f"cannot list the history's folder: {exc.strerror}",
                                     path=str(self.path.parent)) from None
        for name in names:
            match = self._segment_name.match(name)
            if match is None:
                continue
            number, compressed = int(match.group(1)), bool(match.group(2))
            if number not in found or not compressed:
                found[number] = self.path.with_name(name)
        return sorted(found.items())

    def _read_segment(self, path: Path) -> bytes:
        try:
            fd = self._open(path, os.O_RDONLY, 0)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise ConfigurationError(f"cannot read: {exc.strerror}", path=str(path)) from None
        with os.fdopen(fd, "rb") as file:
            data = file.read()
        if path.name.endswith(".gz"):
            try:
                import gzip  # only older, rotated segments need it

                return gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise ConfigurationError(f"damaged compressed history: {exc}",
                                         path=str(path)) from None
        return data

    # -- reading ---------------------------------------------------------------------------
    def _open_active(self) -> int | None:
        try:
            return self._open(self.path, os.O_RDONLY, 0)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise ConfigurationError("is a folder, not a file", path=str(self.path)) from None
        except OSError as exc:
            raise ConfigurationError(f"cannot read: {exc.strerror}",
                                     path=str(self.path)) from None

    def _lines_backward(self) -> Iterator[bytes]:
        """Every whole line, newest first: the file from its end, then older segments."""
        fd = self._open_active()
        if fd is not None:
            try:
                yield from _backward(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
        for _number, path in reversed(self.segments()):
            data = self._read_segment(path)
            end = data.rfind(b"\n") + 1
            for line in reversed(data[:end].split(b"\n")):
                if line.strip():
                    yield line

    def newest_revision(self) -> str | None:
        """The document revision that the active file's last line says was written.

        Only the end of the active file is read (a block); None when there is no line,
        or it cannot be read: the caller then works the answer out the long way.
        """
        try:
            fd = self._open_active()
        except ConfigurationError:
            return None
        if fd is None:
            return None
        try:
            for line in _backward(fd, os.fstat(fd).st_size):
                record = _parse(line)
                return _revision_after(record) if record is not None else None
        except OSError:
            return None
        finally:
            os.close(fd)
        return None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, newest first (unreadable lines skipped with a warning)."""
        for line in self._lines_backward():
            record = _parse(line)
            if record is None:
                log.warning("%s: skipping an unreadable history line: %.60r", self.path, line)
                continue
            yield record

    def entries(self, provider: str | None = None, limit: int | None = None, *,
                current_revision: str | None = None) -> list[HistoryEntry]:
        """History entries, newest first, leaving out revisions that never landed.

        ``current_revision`` (the data file's now) also leaves out a last write whose
        lines are there but whose document is not (in progress, or killed before the
        rename and not yet marked).
        """
        entries: list[HistoryEntry] = []
        for entry in self.iter_entries(current_revision=current_revision):
            if provider is not None and entry.provider != provider:
                continue
            entries.append(entry)
            if limit is not None and len(entries) >= limit:
                break
        return entries

    def iter_entries(self, *, current_revision: str | None = None) -> Iterator[HistoryEntry]:
        """What ``entries`` gives, lazily (reading further back only as it is asked to)."""
        dropped: set[int] = set()
        first = True
        pending: tuple[int, str] | None = None
        for record in self.records():
            action = record.get("action")
            number = record.get("rev")
            if first:
                first = False
                if (current_revision is not None and action != NOT_APPLIED
                        and isinstance(number, int)
                        and record.get("revision") != current_revision
                        and record.get("base_revision") == current_revision):
                    pending = (number, str(record.get("revision")))
            if action == NOT_APPLIED:
                if isinstance(number, int):
                    dropped.add(number)
                continue
            if isinstance(number, int) and number in dropped:
                continue
            if pending is not None and (number, record.get("revision")) == pending:
                continue
            try:
                entry = HistoryEntry.from_json(record)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s: skipping an unreadable history line: %s", self.path, exc)
                continue
            yield entry

    # -- writing (the caller holds the writers' lock) --------------------------------------
    def _tail(self) -> _Tail:
        """The end of the history, after cutting off a trailing fragment."""
        kept = self._kept_tail()
        if kept is not None:
            return kept
        fd = self._open_active_for_writing(create=False)
        if fd is None:
            return self._tail_of_segments()
        try:
            tail = self._tail_of_open(fd)
        except BaseException:
            os.close(fd)
            raise
        tail.fd = fd  # kept open: the append goes through it
        return tail

    def _kept_tail(self) -> _Tail | None:
        """The tail our last append left, if the file at the name is still just that."""
        kept, tail = self._kept.take(), self._kept_tail_state
        if kept is None or tail is None:
            if kept is not None:
                close_if_still(*kept)
            return None
        fd, seen = kept
        try:
            unchanged = signature(os.stat(self.path, follow_symlinks=False)) == seen \
                and signature(os.fstat(fd)) == seen
        except OSError:
            unchanged = False
        if not unchanged:  # rotated, appended to by another writer, edited, deleted
            close_if_still(fd, seen)
            return None
        return _Tail(tail.prev, tail.number, tail.revision, tail.last, fd=fd, size=tail.size)

    def _keep(self, tail: _Tail) -> None:
        """Keep ``tail``'s descriptor open after the write, with what it says now."""
        assert tail.fd is not None
        before = self._kept.take()
        if before is not None and before[0] != tail.fd:
            close_if_still(*before)
        try:
            seen = signature(os.fstat(tail.fd))
        except OSError:
            return
        if seen[2] != tail.size:  # appended to or cut by someone else meanwhile: not ours
            tail.kept = False
            return
        self._kept.entry = (tail.fd, seen)
        self._kept_tail_state = _Tail(tail.prev, tail.number, tail.revision, tail.last,
                                      size=tail.size)
        tail.kept = True

    def _tail_of_open(self, fd: int) -> _Tail:
        size = os.fstat(fd).st_size
        end = _whole_length(fd, size)
        if end < size:
            log.warning("%s: cutting off an unfinished last line (%d bytes) left by a "
                        "writer that was stopped", self.path, size - end)
            os.ftruncate(fd, end)
            os.fsync(fd)
        for line in _backward(fd, end):
            record = _parse(line)
            if record is None:
                continue
            sealed = _seal_of(line)
            if sealed is None:  # an older line: the chain starts after the file
                return _Tail(GENESIS + _sha256(_read_all(fd, end)), _number_of(record),
                             _revision_after(record), record, size=end)
            return _Tail(sealed[1], _number_of(record), _revision_after(record), record,
                         size=end)
        tail = self._tail_of_segments(genesis_of=_read_all(fd, end))
        tail.size = end
        return tail

    def _tail_of_segments(self, genesis_of: bytes = b"") -> _Tail:
        for _number, path in reversed(self.segments()):
            data = self._read_segment(path)
            for line in reversed(data.split(b"\n")):
                record = _parse(line) if line.strip() else None
                if record is not None and _seal_of(line) is not None:
                    return _Tail(_seal_of(line)[1], _number_of(record),  # type: ignore[index]
                                 _revision_after(record), record)
        return _Tail(GENESIS + _sha256(genesis_of), 0, None, None)

    def _open_active_for_writing(self, *, create: bool) -> int | None:
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        try:
            return self._open(self.path, flags, 0o600)
        except FileNotFoundError:
            if create:
                raise ConfigurationError("cannot create the history: its folder is gone; "
                                         "nothing was changed", path=str(self.path)) from None
            return None
        except ConfigurationError:
            raise
        except OSError as exc:
            raise ConfigurationError(f"cannot write the history: {exc.strerror}; nothing was "
                                     "changed", path=str(self.path)) from None

    def prepare(self, file_revision: str | None,
                document_of: Callable[[str], Mapping[str, Selection] | None],
                current: Mapping[str, Selection] | None, actor: str) -> _Tail:
        """Bring the history up to the data file before a write, and rotate if due.

        ``file_revision`` is the data file's revision now (None if it could not be read);
        ``document_of(revision)`` gives a document known to be at that revision (the
        backup), or None. A last write that never landed is marked not applied; an edit
        made outside modelboard is recorded. Returns what the next write's lines chain to.
        """
        try:
            tail = self._tail()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the history: {exc.strerror}; nothing was "
                                     "changed", path=str(self.path)) from None
        try:
            last = tail.last
            records: list[dict[str, Any]] = []
            if (file_revision is not None and last is not None
                    and tail.revision != file_revision):
                now = datetime.now(UTC).replace(microsecond=0).isoformat()
                if (last.get("action") != NOT_APPLIED and isinstance(last.get("rev"), int)
                        and last.get("base_revision") == file_revision):
                    records.append({"action": NOT_APPLIED, "provider": "*", "rev": last["rev"],
                                    "revision": file_revision, "time": now, "actor": actor})
                elif current is not None:
                    records.extend(self._external(tail, file_revision, document_of, current,
                                                  now))
            if records:
                self._write_lines(records, tail)
            self._rotate_if_due(tail)
        except BaseException:
            tail.close()
            raise
        return tail

    def _external(self, tail: _Tail, file_revision: str,
                  document_of: Callable[[str], Mapping[str, Selection] | None],
                  current: Mapping[str, Selection], now: str) -> list[dict[str, Any]]:
        """Lines that record a hand edit: per provider when the document before is known."""
        number = tail.number + 1
        base = tail.revision
        before = document_of(base) if base is not None else None
        common = {"rev": number, "revision": file_revision, "base_revision": base,
                  "time": now, "actor": OUTSIDE}
        if before is None:
            return [{**common, "action": EXTERNAL, "provider": "*", "old": None, "new": None}]
        records = []
        for provider in sorted(set(before) | set(current)):
            old, new = before.get(provider), current.get(provider)
            if old == new:
                continue
            records.append({**common, "action": EXTERNAL, "provider": provider,
                            "old": old.model_name if old else None,
                            "new": new.model_name if new else None,
                            "before": _state_json(old), "after": _state_json(new)})
        return records or [{**common, "action": EXTERNAL, "provider": "*",
                            "old": None, "new": None}]

    def append(self, entries: Sequence[HistoryEntry], tail: _Tail) -> Callable[[], None]:
        """Append and fsync ``entries`` as one write; returns how to take them back.

        Raises ConfigurationError (nothing left behind) if they could not all be written.
        """
        return self._write_lines([entry.to_json() for entry in entries], tail)

    def _write_lines(self, records: Sequence[Mapping[str, Any]],
                     tail: _Tail) -> Callable[[], None]:
        if not records:
            return lambda: None
        lines, prev = seal_chain(records, tail.prev)
        data = b"".join(line + b"\n" for line in lines)
        if tail.fd is None:
            tail.fd = self._open_active_for_writing(create=True)
            assert tail.fd is not None
            tail.size = os.fstat(tail.fd).st_size
        fd, start = tail.fd, tail.size
        try:
            write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            _cut_back(fd, start, self.path)
            reason = ("disk full or over the file-size limit"
                      if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
                      else exc.strerror)
            raise ConfigurationError(f"cannot append to the history: {reason}; nothing "
                                     "was changed", path=str(self.path)) from None
        tail.size = start + len(data)
        tail.prev = prev
        last = dict(records[-1])
        tail.last = last
        tail.number = max(tail.number, _number_of(last))
        tail.revision = _revision_after(last)
        self._keep(tail)

        def take_back() -> None:
            if tail.fd is not None:
                _cut_back(tail.fd, start, self.path)
                tail.size = start
        return take_back

    def _rotate_if_due(self, tail: _Tail) -> None:
        if tail.fd is None:
            if not self.path.parent.is_dir():
                return
            self._compress_leftovers()  # no file: perhaps a rotation stopped half-way
            return
        if tail.size < self.rotate_bytes:
            return
        segments = self.segments()
        number = segments[-1][0] + 1 if segments else 1
        plain = self._segment_path(number, compressed=False)
        try:
            os.rename(self.path, plain)
        except OSError as exc:
            log.warning("%s: could not rotate the history: %s", self.path, exc.strerror)
            return
        tail.close()  # the next append starts a new file
        self._compress_leftovers()

    def _compress_leftovers(self) -> None:
        """Compress rotated segments still plain, then drop the oldest beyond the limit."""
        try:
            segments = self.segments()
        except ConfigurationError:
            return
        for number, path in segments:
            if path.name.endswith(".gz"):
                continue
            try:
                self._compress(path, self._segment_path(number, compressed=True))
            except OSError as exc:
                log.warning("%s: could not compress: %s", path, exc.strerror)
                return
        kept = self.segments()
        for _number, path in kept[:max(len(kept) - self.keep_segments, 0)]:
            with contextlib.suppress(OSError):
                os.unlink(path)
                log.info("%s: dropped the oldest history segment", path)

    def _compress(self, plain: Path, compressed: Path) -> None:
        data = self._read_segment(plain)
        temp = compressed.with_name(f".{compressed.name}.tmp")
        fd = self._open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            import gzip  # once per 64 MiB of history

            write_all(fd, gzip.compress(data, compresslevel=6, mtime=0))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, compressed)
        os.unlink(plain)

    # -- verifying -------------------------------------------------------------------------
    def verify(self) -> Verification:
        """Walk the chain from its start; stop at the first broken link."""
        segments = self.segments()
        files: list[tuple[str, bytes]] = [(p.name, self._read_segment(p)) for _n, p in segments]
        fd = self._open_active()
        if fd is not None:
            try:
                files.append((self.path.name, _read_all(fd, os.fstat(fd).st_size)))
            finally:
                os.close(fd)
        notes: list[str] = []
        if segments and segments[0][0] > 1:
            notes.append(f"segments before {segments[0][1].name} were dropped by rotation; "
                         "the chain is checked from there")
        return verify_chain(files, anchored=not (segments and segments[0][0] > 1),
                            notes=notes)


def _number_of(record: Mapping[str, Any]) -> int:
    number = record.get("rev")
    return number if isinstance(number, int) else 0


def _revision_after(record: Mapping[str, Any]) -> str | None:
    revision = record.get("revision")
    return revision if isinstance(revision, str) else None


def _backward(fd: int, end: int) -> Iterator[bytes]:
    """The whole lines of ``fd`` before ``end``, newest first, read a block at a time.

    The first block is small (a writer wants the last line only), later ones grow.
    """
    end = _whole_length(fd, end)
    position = end
    carry = b""
    block = FIRST_BLOCK_BYTES
    while position > 0:
        size = min(block, position)
        block = min(block * 4, BLOCK_BYTES)
        position -= size
        chunk = os.pread(fd, size, position) + carry
        lines = chunk.split(b"\n")
        carry = lines[0]
        for line in reversed(lines[1:]):
            if line.strip():
                yield line
    if carry.strip():
        yield carry


def _whole_length(fd: int, size: int) -> int:
    """The length of ``fd`` up to and including its last newline."""
    position = size
    block = FIRST_BLOCK_BYTES
    while position > 0:
        step = min(block, position)
        block = min(block * 4, BLOCK_BYTES)
        chunk = os.pread(fd, step, position - step)
        at = chunk.rfind(b"\n")
        if at >= 0:
            return position - step + at + 1
        position -= step
    return 0


def _read_all(fd: int, end: int) -> bytes:
    parts = []
    position = 0
    while position < end:
        chunk = os.pread(fd, min(1 << 20, end - position), position)
        if not chunk:
            break
        parts.append(chunk)
        position += len(chunk)
    return b"".join(parts)


def _cut_back(fd: int, length: int, path: Path) -> None:
    """Truncate to ``length`` (what the file was before a failed append)."""
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    except OSError as exc:
        log.error("%s: could not remove a partly written line: %s", path, exc.strerror)
