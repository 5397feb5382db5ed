"""Selections in Redis, so that a fleet of proxy hosts shares one store.

``redis://[user:password@]host:port/db?key=modelboard`` (also ``rediss://`` for TLS
and ``unix:///path/to/socket?db=0``). Under the key prefix (``key``, default
``modelboard``) live:

- ``<key>:document`` — the JSON document, byte for byte what the file backend writes
  (so the revision is the same content hash);
- ``<key>:counter`` — an integer that grows by one with every write (the cheap token
  watchers compare);
- ``<key>:backup`` — the last document written by modelboard, used if the document is
  ever found unreadable;
- ``<key>:history`` — a stream of history entries, one field ``entry`` holding the
  same JSON object as a line of the file history (capped at HISTORY_LIMIT entries);
- ``<key>:corrupt:<UTC time>`` — unreadable documents copied aside;
- the pub/sub channel ``<key>:changes`` — ``<counter> <revision>`` after every write.

A write is one compare-and-swap script: it checks that every key holds the type it
should (refusing before changing anything), then stores the new document (with its
backup, the counter, the history entries and the notification) only if the counter and
the document are still those the change was computed on; otherwise it returns what is
stored and the change is applied again on top of it.

What a watcher compares is the counter *and* the SHA-1 of the document (computed by the
server), so a hand edit with a plain ``SET`` is noticed too. It hears of changes through
the channel and, where the server has keyspace notifications enabled, through the
document's keyspace channel; where it has not, it polls every HAND_EDIT_POLL_S.

A watching store keeps a last-known copy of the document on local disk (LOCAL_COPY_ENV,
else ``$XDG_CACHE_HOME/modelboard/``), so that a proxy restarted during an outage starts
from it instead of failing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .backend import Commit, StoredState
from .errors import BackendUnavailableError, ConfigurationError, ReadOnlyError
from .fileformat import parse_document, render_document, revision_of_bytes
from .history import stamp_entries
from .models import HistoryEntry, Selection

__all__ = ["DEFAULT_KEY", "HISTORY_LIMIT", "RedisBackend", "RedisKeys", "RedisUnavailableError",
           "mask_password"]

log = logging.getLogger(__name__)

DEFAULT_KEY = "modelboard"
#: Entries kept in the history stream (older ones are trimmed, approximately).
HISTORY_LIMIT = 100_000
#: Connection defaults; the URL may override them (``?socket_timeout=…``).
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
#: How long a writer keeps retrying a compare-and-swap that others keep winning.
COMMIT_TIMEOUT_S = 30.0
#: How often the watcher checks for changes whose notification may have been lost.
RESYNC_INTERVAL_S = 5.0
#: How often it checks when the server sends no keyspace notifications (hand edits).
HAND_EDIT_POLL_S = 0.5
#: Where watching stores keep their last-known copies, unless ``?local_copy=`` says.
LOCAL_COPY_ENV = "MODELBOARD_LOCAL_COPY_DIR"
#: How long the watcher blocks for a message before checking ``stop``.
POLL_S = 0.1
#: Reconnection backoff of the watcher: first and longest wait.
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0
_EMPTY_REVISION = revision_of_bytes(render_document({}))


class RedisUnavailableError(BackendUnavailableError, ConfigurationError):
    """Redis cannot be reached, or refused the credentials.

    Also a ConfigurationError, so that a watching store treats an outage like an
    unreadable file: it keeps serving the last good snapshot and reports why.
    """


def _parts(url: str) -> tuple[str, str, str]:
    """(``scheme://authority``, path, query) split by hand: urlunsplit would turn
    ``unix:///path`` into ``unix:/path``."""
    head, _, query = url.partition("?")
    scheme, separator, rest = head.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{separator}{authority}", slash + path, query


def mask_password(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` query) replaced."""
    prefix, path, query = _parts(url)
    scheme, separator, authority = prefix.rpartition("://")
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    if query:
        pairs = [(name, "***" if name == "password" else value)
                 for name, value in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*/", quote_via=quote)
    return f"{scheme}{separator}{authority}{path}" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The key names under one prefix."""

    prefix: str

    @property
    def document(self) -> str:
        return f"{self.prefix}:document"

    @property
    def counter(self) -> str:
        return f"{self.prefix}:counter"

    @property
    def backup(self) -> str:
        return f"{self.prefix}:backup"

    @property
    def history(self) -> str:
        return f"{self.prefix}:history"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:changes"

    def corrupt(self, stamp: str) -> str:
        return f"{self.prefix}:corrupt:{stamp}"


_OURS = ("key", "local_copy")


def _split_location(location: str) -> tuple[str, str, str | None]:
    """(the URL for redis-py, the key prefix, ``local_copy``): ``key`` and ``local_copy``
    are ours, the rest is redis-py's."""
    prefix_and_path = location.partition("?")[0]
    pairs = parse_qsl(_parts(location)[2], keep_blank_values=True)
    prefixes = [value for name, value in pairs if name == "key"]
    prefix = prefixes[-1] if prefixes else DEFAULT_KEY
    if not prefix or not prefix.isprintable() or any(ch.isspace() for ch in prefix):
        raise ConfigurationError(f"key prefix {prefix!r} must be non-empty, printable and "
                                 "without spaces", path=mask_password(location))
    copies = [value for name, value in pairs if name == "local_copy"]
    rest = urlencode([(name, value) for name, value in pairs if name not in _OURS])
    return prefix_and_path + (f"?{rest}" if rest else ""), prefix, \
        (copies[-1] if copies else None)


def default_local_copy(location: str) -> Path:
    """Where a watching store on ``location`` (URL and key prefix) keeps its copy unless
    told otherwise:
    ``$MODELBOARD_LOCAL_COPY_DIR``, else ``$XDG_CACHE_HOME/modelboard``, else
    ``~/.cache/modelboard``; one file per server, database and key prefix."""
    folder = os.environ.get(LOCAL_COPY_ENV)
    if not folder:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        folder = os.path.join(cache, "modelboard")
    name = hashlib.sha1(mask_password(location).encode(), usedforsecurity=False).hexdigest()
    return Path(folder) / f"redis-{name[:16]}.json"


def _write_atomically(path: Path, data: bytes) -> None:
    """A temporary file in the same folder, fsynced, renamed over ``path`` (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                 | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _sha1(data: bytes) -> str:
    """The digest the script compares (Lua has ``redis.sha1hex``)."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class _Known:
    """A stored document as a writer believes it: counter, SHA-1 ('' if none), content."""

    counter: int | None
    sha1: str
    selections: Mapping[str, Selection]


def _after_type_checks(types: str) -> str:
    """The start of every script: refuse before touching anything when a key holds the
    wrong type (``{-1, key, found, wanted}``, for KEYS in order against ``types``) or the
    counter (KEYS[2]) is not a number (``{-2, key, value}``); then ``counter`` is set."""
    return "\nfor i, want in ipairs({" + types + """}) do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= want and kind ~= 'none' then return {-1, KEYS[i], kind, want} end
end
local counter = redis.call('GET', KEYS[2]) or ''
if counter ~= '' and not string.match(counter, '^%d+$') then
  return {-2, KEYS[2], counter}
end"""


#: One write, atomically: refuse (returning what is stored) unless the counter and the
#: document are what the writer built on; else store, keep a backup, count, record the
#: history, and announce ``<counter> <revision>``.
_COMPARE_AND_SWAP = _after_type_checks("'string', 'string', 'string', 'stream'") + """
local document = redis.call('GET', KEYS[1])
local digest = ''
if document then digest = redis.sha1hex(document) end
if counter ~= ARGV[1] or digest ~= ARGV[2] then
  return {0, counter, document}
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], ARGV[3])
local new = redis.call('INCR', KEYS[2])
for i = 7, #ARGV do
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'entry', ARGV[i])
end
redis.call('PUBLISH', ARGV[5], new .. ' ' .. ARGV[4])
return {1, new}
"""


#: What a reader (and a watcher's change check) needs, with the same type checks:
#: ``{1, counter, document or sha1}``; ARGV[1] is ``document`` or ``digest``.
_READ = _after_type_checks("'string', 'string'") + """
local document = redis.call('GET', KEYS[1])
if ARGV[1] == 'digest' then
  if document then return {1, counter, redis.sha1hex(document)} end
  return {1, counter, ''}
end
return {1, counter, document}
"""


def _bytes(value: object) -> bytes | None:
    """A reply as bytes (redis-py types replies loosely: bytes, or str when decoding)."""
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reason(exc: BaseException) -> str:
    """redis-py's message, as one line without its trailing period."""
    text = " ".join(str(exc).split()).rstrip(".")
    return text or type(exc).__name__


class RedisBackend:
    """Selections in one Redis database under a key prefix; see the module docstring."""

    def __init__(self, location: str, *, read_only: bool = False,
                 local_copy: str | os.PathLike[str] | None = None) -> None:
        #: The URL with the password masked: safe for messages, logs and screens.
        self.location = mask_password(location)
        self.read_only = read_only
        #: Entries the history stream keeps (older ones are trimmed).
        self.history_limit = HISTORY_LIMIT
        url, prefix, copy_option = _split_location(location)
        self.keys = RedisKeys(prefix)
        #: Where a watching store keeps its last-known copy (None: nowhere, ``local_copy=off``).
        chosen = os.fspath(local_copy) if local_copy is not None else copy_option
        self.local_copy: Path | None = (
            None if chosen == "off" else Path(chosen) if chosen
            else default_local_copy(f"{url}#{prefix}"))
        self._keeping_copy = False
        #: Why Redis could not be reached at start-up (the store starts from the copy).
        self.unreachable_at_start: RedisUnavailableError | None = None
        self._where = f"{self.location} ({self.keys.document})"
        self._quarantined: bytes | None = None
        #: The document last read or written here, so that a write on top of it needs
        #: neither a read nor a parse (one object, swapped whole).
        self._known: _Known | None = None
        no_retries = Retry(NoBackoff(), 0)  # fail fast and clearly; the watcher retries itself
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                retry=no_retries)
        except ValueError as exc:
            raise ConfigurationError(f"not a usable Redis URL: {_reason(exc)}",
                                     path=self.location) from None
        self._compare_and_swap = self._client.register_script(_COMPARE_AND_SWAP)
        self._read_script = self._client.register_script(_READ)
        try:
            self._client.ping()  # a wrong address or password is reported here, plainly
        except redis.RedisError as exc:
            error = self._unavailable(exc)
            outage = not isinstance(exc, redis.AuthenticationError | redis.ResponseError)
            if not (outage and self.local_copy is not None and self.local_copy.is_file()):
                self._client.close()
                raise error from None
            self.unreachable_at_start = error  # the store starts from the copy

    def __repr__(self) -> str:
        return f"RedisBackend({self.location!r}, read_only={self.read_only})"

    @property
    def client(self) -> redis.Redis:
        """The connection, for the fleet's reader reports under the same prefix."""
        return self._client

    def _unavailable(self, exc: BaseException, consequence: str = "") -> RedisUnavailableError:
        if isinstance(exc, redis.AuthenticationError):
            what = f"Redis refused the credentials: {_reason(exc)}"
        elif isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
            what = f"cannot reach Redis: {_reason(exc)}"
        else:
            what = f"Redis error: {_reason(exc)}"
        return RedisUnavailableError(what + (f"; {consequence}" if consequence else ""),
                                     path=self.location)

    # -- reading --------------------------------------------------------------------------
    def _wrong_type(self, reply: list[Any], consequence: str = "") -> ConfigurationError:
        """The one clear error for a key holding what modelboard never stores there."""
        key = _text(reply[1])
        if reply[0] == -1:
            what = f"{key} holds a {_text(reply[2])}, not a {_text(reply[3])}"
        else:
            what = f"{key} holds {_text(reply[2])[:40]!r}, not a whole number"
        advice = "; delete or fix that key (modelboard recreates it)"
        return ConfigurationError(what + (f"; {consequence}" if consequence else "") + advice,
                                  path=self.location)

    def _read(self, mode: str) -> tuple[int | None, bytes | None]:
        """(counter, document) or (counter, the document's SHA-1 as bytes), type-checked."""
        try:
            reply = list(self._read_script(keys=[self.keys.document, self.keys.counter],
                                           args=[mode]))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        if reply[0] != 1:
            raise self._wrong_type(reply)
        counter = _text(reply[1])
        return (int(counter) if counter else None), _bytes(reply[2])

    def token(self) -> object:
        """The counter and the document's SHA-1: a plain ``SET`` by hand changes it too."""
        counter, digest = self._read("digest")
        return (counter, _text(digest) if digest else "")

    def _read_document(self) -> tuple[bytes | None, int | None]:
        counter, document = self._read("document")
        return document, counter

    def load(self) -> StoredState:
        document, counter = self._read_document()
        if document is None:
            return StoredState({}, _EMPTY_REVISION, token=(counter, ""), exists=False)
        selections = self._parse(document, counter).selections
        rendered = render_document(selections)
        if self._keeping_copy and self.local_copy is not None:
            self._keep_copy(rendered)
        return StoredState(selections, revision_of_bytes(rendered),
                           token=(counter, _sha1(document)))

    def _keep_copy(self, rendered: bytes) -> None:
        assert self.local_copy is not None
        try:
            if self._copied != _digest(rendered):
                _write_atomically(self.local_copy, rendered)
                self._copied = _digest(rendered)
        except OSError as exc:
            if self._copy_failed != str(exc):
                log.warning("%s: cannot keep the local copy %s: %s", self.location,
                            self.local_copy, exc.strerror or exc)
            self._copy_failed = str(exc)

    _copied: bytes | None = None
    _copy_failed: str | None = None

    def load_local_copy(self) -> StoredState | None:
        """The last-known copy a watching store kept, if Redis was unreachable at start-up."""
        if self.unreachable_at_start is None or self.local_copy is None:
            return None
        try:
            data = self.local_copy.read_bytes()
            selections = parse_document(data, path=str(self.local_copy))
        except (OSError, ConfigurationError) as exc:
            log.warning("%s: the local copy is not usable: %s", self.location, exc)
            return None
        return StoredState(selections, revision_of_bytes(render_document(selections)),
                           token=None)

    def load_backup(self) -> StoredState | None:
        try:
            data = _bytes(self._client.get(self.keys.backup))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        if data is None:
            return None
        try:
            selections = parse_document(data, path=f"{self.location} ({self.keys.backup})")
        except ConfigurationError as exc:
            log.warning("backup is not usable either: %s", exc)
            return None
        return StoredState(selections, revision_of_bytes(render_document(selections)),
                           token=None)

    def quarantine(self) -> str | None:
        """Copy the unreadable document to ``<key>:corrupt:<UTC time>``."""
        if self.read_only:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.keys.corrupt(stamp)
        try:
            data = _bytes(self._client.get(self.keys.document))
            if data is None or self._readable(data):
                return None  # what failed was another key (of the wrong type, say)
            self._client.set(aside, data, nx=True)
        except redis.RedisError as exc:
            raise self._unavailable(exc, "nothing was copied") from None
        self._quarantined = _digest(data)
        return f"{self.location} ({aside})"

    def _readable(self, document: bytes) -> bool:
        try:
            parse_document(document, path=self._where)
        except ConfigurationError:
            return False
        return True

    # -- writing --------------------------------------------------------------------------
    def commit(self, change: Callable[[Mapping[str, Selection]], Commit | None], *,
               base: StoredState) -> StoredState | None:
        """Compare-and-swap in one round trip; on a lost race, again on the newer state.

        The first attempt builds on the document this backend last read or wrote, when
        the caller's base is that one; the script refuses if the stored counter or
        document differ and returns them, so the retry needs no extra read. A change
        that refuses (conflict, lock, validation) is only believed on the latest state.
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        known = self._known
        belief = known if known is not None and (known.counter, known.sha1) == base.token \
            else None
        fresh = False
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        attempt = 0
        while True:
            if belief is None:
                belief, fresh = self._read_latest(base), True
            try:
                result = change(belief.selections)
            except Exception:
                if fresh:
                    raise
                belief = None  # refused on what we believed: check on the latest first
                continue
            if result is None:
                if fresh:
                    return None
                belief = None
                continue
            rendered = render_document(result.selections)
            revision = revision_of_bytes(rendered)
            # The script stores only if the counter is still belief.counter: this write's
            # number is the one after it.
            lines = [entry.to_line().encode("utf-8") for entry in stamp_entries(
                result.history, number=(belief.counter or 0) + 1, base_revision=None,
                revision=revision, before=belief.selections, after=result.selections)]
            reply = self._swap(belief, rendered, revision, lines)
            if reply[0] == 1:
                new_counter = int(reply[1])
                self._quarantined = None
                self._known = _Known(new_counter, _sha1(rendered), result.selections)
                if self._keeping_copy and self.local_copy is not None:
                    self._keep_copy(rendered)
                return StoredState(result.selections, revision,
                                   token=(new_counter, _sha1(rendered)))
            if reply[0] < 0:
                raise self._wrong_type(reply, "nothing was written")
            # Someone wrote since: apply the change again on top of what the script saw.
            attempt += 1
            if time.monotonic() > deadline:
                raise RedisUnavailableError(
                    f"gave up after {attempt} attempts: other writers kept changing the "
                    "selections; nothing was written", path=self.location)
            if attempt > 3:  # a crowd of writers: spread them out
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
            counter = _bytes(reply[1])
            belief = self._belief(_bytes(reply[2]), int(counter) if counter else None, base)
            fresh = True

    def _swap(self, belief: _Known, rendered: bytes, revision: str,
              history: list[bytes]) -> list[Any]:
        keys = [self.keys.document, self.keys.counter, self.keys.backup, self.keys.history]
        arguments: list[Any] = [
            "" if belief.counter is None else str(belief.counter), belief.sha1, rendered,
            revision, self.keys.channel, self.history_limit, *history]
        try:
            reply = self._compare_and_swap(keys=keys, args=arguments)
        except redis.RedisError as exc:
            # redis-py says "connecting to" only when the request never left.
            consequence = ("nothing was written" if "connecting to" in str(exc) else
                           "the connection broke while storing: the change may or may not be "
                           "stored; reload to check")
            raise self._unavailable(exc, consequence) from None
        return list(reply)

    def _read_latest(self, base: StoredState) -> _Known:
        document, counter = self._read_document()
        return self._belief(document, counter, base)

    def _belief(self, document: bytes | None, counter: int | None,
                base: StoredState) -> _Known:
        """What a change builds on: the stored document, or ``base`` if there is none."""
        if document is None:
            return _Known(counter, "", base.selections)
        try:
            return self._parse(document, counter)
        except ConfigurationError:
            if _digest(document) != self._quarantined:
                raise
            # Already copied aside at start-up: build on the last good state.
            return _Known(counter, _sha1(document), base.selections)

    def _parse(self, document: bytes, counter: int | None) -> _Known:
        digest = _sha1(document)
        known = self._known
        if known is not None and known.sha1 == digest:
            selections = known.selections  # unchanged: no need to parse again
        else:
            selections = parse_document(document, path=self._where)
        self._known = _Known(counter, digest, selections)
        return self._known

    def _queue_write(self, pipe: Any, rendered: bytes, revision: str, counter: int,
                     history: list[HistoryEntry]) -> None:
        """Queue, inside MULTI, everything one write stores (EXEC applies all or nothing)."""
        pipe.set(self.keys.document, rendered)
        pipe.set(self.keys.backup, rendered)
        pipe.incr(self.keys.counter)
        for entry in history:
            pipe.xadd(self.keys.history, {"entry": entry.to_line().encode("utf-8")},
                      maxlen=self.history_limit, approximate=True)
        pipe.publish(self.keys.channel, f"{counter} {revision}")

    def import_state(self, selections: Mapping[str, Selection],
                     history: list[HistoryEntry]) -> StoredState:
        """Store ``selections`` and ``history`` (oldest first, kept verbatim) into an empty key.

        Refuses with ConfigurationError if selections or history are already stored.
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        rendered = render_document(selections)
        revision = revision_of_bytes(rendered)
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.watch(self.keys.document,  # type: ignore[no-untyped-call]
                           self.keys.counter, self.keys.history)
                if pipe.exists(self.keys.document, self.keys.history):
                    raise ConfigurationError(
                        f"already holds selections or history under {self.keys.prefix}:*; "
                        "nothing was copied", path=self.location)
                counter = int(pipe.get(self.keys.counter) or 0) + 1
                # The copied state is the last copied revision: its number goes on.
                numbered = max((entry.number or 0 for entry in history), default=0)
                pipe.multi()
                if numbered >= counter:
                    pipe.set(self.keys.counter, numbered - 1)
                    counter = numbered
                self._queue_write(pipe, rendered, revision, counter, history)
                pipe.execute()
        except redis.WatchError:
            raise ConfigurationError("another writer stored selections meanwhile; nothing "
                                     "was copied", path=self.location) from None
        except redis.RedisError as exc:
            raise self._unavailable(exc, "nothing was copied") from None
        return StoredState(dict(selections), revision, token=(counter, _sha1(rendered)))

    def write_problem(self) -> str | None:
        """None: only a write can tell whether the server (or its ACL) accepts it."""
        return None

    # -- history --------------------------------------------------------------------------
    def read_history(self, provider: str | None = None,
                     limit: int | None = None) -> list[HistoryEntry]:
        entries: list[HistoryEntry] = []
        page = limit if provider is None and limit is not None else 500
        newest = "+"
        try:
            while limit is None or len(entries) < limit:
                batch = self._client.xrevrange(self.keys.history, max=newest, min="-",
                                               count=max(page, 1))
                if not batch:
                    break
                for stream_id, fields in batch:
                    entry = self._history_entry(_text(stream_id), fields)
                    if entry is not None and (provider is None or entry.provider == provider):
                        entries.append(entry)
                newest = "(" + _text(batch[-1][0])  # exclusive: go on below it
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return entries[:limit] if limit is not None else entries

    def _history_entry(self, stream_id: str, fields: Any) -> HistoryEntry | None:
        try:
            return HistoryEntry.from_json(json.loads(fields[b"entry"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s: skipping unreadable history entry %s: %s", self.location,
                        stream_id, exc)
            return None

    # -- watching -------------------------------------------------------------------------
    def _keyspace_channel(self) -> str | None:
        """The document's keyspace channel if the server announces string writes there."""
        try:
            setting = self._client.config_get("notify-keyspace-events")
        except redis.ResponseError:  # CONFIG refused (a managed server, an ACL): poll
            return None
        flags = _text(next(iter(dict(setting).values()), ""))
        if "K" not in flags or not ("$" in flags or "A" in flags):
            return None
        database = self._client.connection_pool.connection_kwargs.get("db", 0)
        return f"__keyspace@{database}__:{self.keys.document}"

    def follow(self, stop: threading.Event, armed: threading.Event) -> Iterator[None]:
        """Yield on every notification, on every (re)connection, and at each check.

        The store compares the counter and the document's digest (one small script), so
        a yield with no change costs one round trip. With keyspace notifications a hand
        edit is announced like a write and the check runs every RESYNC_INTERVAL_S;
        without them, every HAND_EDIT_POLL_S.
        """
        if not self.read_only and self.local_copy is not None:
            self._keeping_copy = True
            if self._known is not None:
                self._keep_copy(render_document(self._known.selections))
        backoff = BACKOFF_FIRST_S
        lost = False
        mode: str | None = None
        while not stop.is_set():
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
            try:
                keyspace = self._keyspace_channel()
                channels = [self.keys.channel, *([keyspace] if keyspace else [])]
                pubsub.subscribe(*channels)
                confirmed = 0
                while not stop.is_set() and confirmed < len(channels):
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is not None and message["type"] == "subscribe":
                        confirmed += 1
                if stop.is_set():
                    return
                now = "keyspace notifications" if keyspace else \
                    f"a check every {HAND_EDIT_POLL_S:g} s"
                if now != mode:
                    log.debug("%s: hand edits are noticed through %s", self.location, now)
                    mode = now
                if lost:
                    log.debug("%s: Redis is reachable again", self.location)
                    lost = False
                armed.set()
                backoff = BACKOFF_FIRST_S
                interval = RESYNC_INTERVAL_S if keyspace else HAND_EDIT_POLL_S
                yield  # resync: whatever changed while we were not subscribed
                next_check = time.monotonic() + interval
                while not stop.is_set():
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is not None:
                        while pubsub.get_message(timeout=0) is not None:
                            pass  # a burst: one reload covers them all
                        yield
                        next_check = time.monotonic() + interval
                    elif time.monotonic() >= next_check:
                        yield
                        next_check = time.monotonic() + interval
            except (redis.RedisError, OSError) as exc:
                # The store logs the outage (its load error) once, and its end.
                lost = True
                log.debug("%s: no Redis (%s); next attempt in %.2f s",
                          self.location, _reason(exc), backoff)
                armed.set()  # the resync on reconnection reports whatever changes meanwhile
                yield  # let the store notice (and show) the outage
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.close()
