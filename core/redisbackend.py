"""Selections in Redis, so that a fleet of proxy hosts shares one store.

``redis://[user:password@]host:port/db?key=modelboard`` (also ``rediss://`` for TLS
and ``unix:///path/to/socket?db=0``). Under the key prefix (``key``, default
``modelboard``) live:

- ``<key>:selections`` — a hash, one field per provider: the provider's entry as JSON
  (the object the file format holds for it, keys sorted);
- ``<key>:counter`` — the revision number: grows by one with every write;
- ``<key>:backup`` — a hash, per provider the last value modelboard wrote there;
- ``<key>:history`` — a stream, one entry per provider change, field ``entry`` holding a
  chained line of the file history (``prev`` and ``hash``, sealed by core/history.py),
  capped at HISTORY_LIMIT entries;
- ``<key>:corrupt:<UTC time>`` — unreadable selections copied aside;
- the pub/sub channel ``<key>:changes`` — after every write, a JSON message with the new
  revision number, its content hash, the new chain head and what changed
  (``{"rev": 7, "revision": "…", "head": "…", "changes": {"openai": "<entry>" or null}}``);
- ``<key>:document`` — the whole document as one string, as earlier versions stored
  it (and a hand edit may still put it there): read as the whole state while it is there,
  and moved into the hash by the next write (kept as ``<key>:migrated:document``).

A write is one Lua script over the providers it changes, whatever the store's size: it
checks that every key holds the type it should (refusing before changing anything), that
the counter is the one the change was computed on, that each changed field still holds
what the writer read (a hand edit is never overwritten unseen) and that the history ends
where the writer believes; then it sets those fields (and their backup), counts, appends
the chained history entries and publishes the delta. Otherwise it says what moved and the
change is applied again on the newer state.

The revision (content hash) is the sum of the SHA-256 of every provider's entry, so that a
write updates it in constant time; equal selections give equal revisions in every process.

A watcher applies each delta to what it holds when its number follows the last one it
applied, and reloads everything on any gap: a number skipped, a reconnection, a message it
cannot read, a content hash that does not match. Hand edits (``HSET`` of a field, or a
``SET`` of the old ``<key>:document``) are noticed through keyspace notifications where
the server has them on, else by a check every HAND_EDIT_POLL_S that compares the counter
and a digest the server computes.

A watching store keeps a last-known copy of the document on local disk (LOCAL_COPY_ENV,
else ``$XDG_CACHE_HOME/modelboard/``), so that a proxy restarted during an outage starts
from it instead of failing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .backend import Commit, StoredState
from .errors import BackendUnavailableError, ConfigurationError, ReadOnlyError
from .fileformat import DocumentCodec, parse_document
from .history import (
    Verification,
    genesis_of,
    seal_chain,
    seal_of,
    stamp_entries,
    verify_chain,
)
from .logs import logger
from .models import HistoryEntry, Selection
from .safefiles import replace_private_file

__all__ = ["DEFAULT_KEY", "HISTORY_LIMIT", "RedisBackend", "RedisKeys", "RedisUnavailableError",
           "entry_value", "mask_password", "revision_of"]

log = logger(__name__)

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
#: Fields sent per HSET when a whole state is written (migration, import, recovery).
_CHUNK = 1000
_MODULUS = 1 << 256


class RedisUnavailableError(BackendUnavailableError, ConfigurationError):
    """Redis cannot be reached, or refused the credentials.

    Also a ConfigurationError, so that a watching store treats an outage like an
    unreadable file: it keeps serving the last good snapshot and reports why.
    """


class _WrongTypeError(ConfigurationError):
    """A key holds what modelboard never stores there (nothing to copy aside)."""


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
    def selections(self) -> str:
        return f"{self.prefix}:selections"

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

    @property
    def document(self) -> str:
        """The whole document as one string: the layout before one field per provider."""
        return f"{self.prefix}:document"

    @property
    def migrated_document(self) -> str:
        return f"{self.prefix}:migrated:document"

    @property
    def migrated_backup(self) -> str:
        return f"{self.prefix}:migrated:backup"

    def corrupt(self, stamp: str) -> str:
        return f"{self.prefix}:corrupt:{stamp}"

    def script_keys(self) -> list[str]:
        """KEYS of every script, in this order (the last two only a whole write uses)."""
        return [self.selections, self.counter, self.document, self.backup, self.history,
                self.migrated_document, self.migrated_backup]


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


def entry_value(selection: Selection) -> bytes:
    """A provider's field in the hash: its entry as the file holds it, as compact JSON."""
    return json.dumps(selection.to_json(), ensure_ascii=False, sort_keys=True).encode("utf-8")


def _entry_hash(provider: str, selection: Selection, value: bytes | None = None) -> int:
    """One provider's part of the content hash (``value``: its entry_value, if known)."""
    value = entry_value(selection) if value is None else value
    digest = hashlib.sha256(provider.encode("utf-8") + b"\0" + value).digest()
    return int.from_bytes(digest, "big")


def _revision_of_total(total: int) -> str:
    return hashlib.sha256(total.to_bytes(32, "big")).hexdigest()[:16]


def _total_of(selections: Mapping[str, Selection]) -> int:
    return sum(_entry_hash(provider, selection)
               for provider, selection in selections.items()) % _MODULUS


def revision_of(selections: Mapping[str, Selection]) -> str:
    """The content hash of selections stored in Redis: 16 hex digits of the SHA-256 of the
    sum (modulo 2**256) of every entry's SHA-256, so that one write updates it in
    constant time. Equal selections, equal revision, however the fields are formatted."""
    return _revision_of_total(_total_of(selections))


def _digest_of_fields(flat: list[bytes]) -> str:
    """What the check script computes over HGETALL (in the server's order), '' if empty."""
    if not flat:
        return ""
    hasher = hashlib.sha1(usedforsecurity=False)
    for item in flat:
        hasher.update(b"%d:" % len(item))
        hasher.update(item)
    return hasher.hexdigest()


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class _View:
    """The stored state as this process knows it, swapped whole.

    ``raw`` is each field as the last full read found it, and ``read`` the selections that
    read gave (shared, never copied): a field whose selection is still the one read holds
    those bytes, any other the canonical ones modelboard writes. ``head`` what the
    next history entry's ``prev`` is (None: not known yet); ``digest`` the server's digest
    of exactly this content, when known; ``legacy``: stored as the old single document;
    ``replace``: what is stored cannot be used (copied aside), so the next write replaces
    all of it; ``changed``/``since``: the delta that made it, from the view with that token.
    """

    counter: int | None
    selections: Mapping[str, Selection]
    raw: Mapping[str, bytes]
    read: Mapping[str, Selection]
    total: int
    head: str | None
    digest: str | None = None
    legacy: bool = False
    replace: bool = False
    changed: frozenset[str] | None = None
    since: tuple[int | None, str] | None = None
    revision: str = ""

    @classmethod
    def of(cls, counter: int | None, selections: Mapping[str, Selection],
           raw: Mapping[str, bytes], read: Mapping[str, Selection], total: int,
           head: str | None, *, revision: str | None = None, **rest: Any) -> _View:
        return cls(counter, selections, raw, read, total, head,
                   revision=_revision_of_total(total) if revision is None else revision,
                   **rest)

    def stored_bytes(self, provider: str, canonical: bytes | None = None) -> bytes:
        """What the field of ``provider`` holds, as far as this view knows ('' if none);
        ``canonical``: its selection's entry_value, when the caller has it."""
        selection = self.selections.get(provider)
        if selection is None:
            return b""
        if self.read.get(provider) is selection:
            return self.raw.get(provider, b"")
        return entry_value(selection) if canonical is None else canonical

    @property
    def token(self) -> tuple[int | None, str]:
        return (self.counter, self.revision)

    @property
    def exists(self) -> bool:
        return self.counter is not None or bool(self.selections) or self.legacy


@dataclass(frozen=True, slots=True)
class _Again:
    """Nothing was stored: compute the change again on ``belief`` (see _store)."""

    belief: _View


# -- the scripts -------------------------------------------------------------------------------
# KEYS, in every script: 1 selections (hash), 2 counter (string), 3 the old document
# (string), 4 backup (hash), 5 history (stream), 6 and 7 where a migration keeps the old
# document and backup. Every script first refuses, before touching anything, a key of the
# wrong type ({-1, key, found, wanted}) or a counter that is not a number ({-2, key, value}).
_PRELUDE = """
for _, check in ipairs({{1, 'hash'}, {2, 'string'}, {3, 'string'}, {5, 'stream'}}) do
  local kind = redis.call('TYPE', KEYS[check[1]])['ok']
  if kind ~= check[2] and kind ~= 'none' then return {-1, KEYS[check[1]], kind, check[2]} end
end
local counter = redis.call('GET', KEYS[2]) or ''
if counter ~= '' and not string.match(counter, '^%d+$') then
  return {-2, KEYS[2], counter}
end
local document = redis.call('GET', KEYS[3])
local function digest()
  if document then return redis.sha1hex(document) end
  local all = redis.call('HGETALL', KEYS[1])
  if #all == 0 then return '' end
  local parts = {}
  for i = 1, #all do parts[i] = #all[i] .. ':' .. all[i] end
  return redis.sha1hex(table.concat(parts))
end
local function last_entry()
  local last = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
  if #last == 0 then return '' end
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'entry' then return fields[i + 1] end
  end
  return ''
end
"""

#: Everything a reader needs: {1, counter, last history entry, old document or '', fields}.
_READ = _PRELUDE + """
if document then return {1, counter, last_entry(), document, {}} end
return {1, counter, last_entry(), '', redis.call('HGETALL', KEYS[1])}
"""

#: The watcher's check for changes never announced: {1, counter, digest of the content}.
_CHECK = _PRELUDE + """
return {1, counter, digest()}
"""

#: The start of a write: the backup may be the old layout's string only beside the old
#: document; the chain must end where the writer believes (ARGV[head]), else {3, its hash}.
_WRITE_CHECKS = """
local backup_kind = redis.call('TYPE', KEYS[4])['ok']
if backup_kind ~= 'hash' and backup_kind ~= 'none'
    and not (document and backup_kind == 'string') then
  return {-1, KEYS[4], backup_kind, 'hash'}
end
local function chained_to(expected)
  -- The seal is the line's last 77 bytes (as history.py's _SEAL reads it): matching
  -- there, not by a search from the start of a line of a kilobyte, is a fifth of the
  -- script's own time.
  local sealed = string.match(string.sub(last_entry(), -77),
                              '^, "hash": "(' .. string.rep('[0-9a-f]', 64) .. ')"}$')
  if sealed and sealed ~= expected then return sealed end
  return nil
end
"""

#: One write of the providers it changes. ARGV: 1 the counter it was computed on, 2 the
#: chain head, 3 channel, 4 message, 5 history cap, 6 n, then n triples (field, value it
#: expects there, new value; '' is "no field"), then the history entries.
#: {1, new counter}, or {0, counter}: another write came first; {2}: the old document is
#: still there; {3, head}: the history moved; {4, field, value}: a field changed by hand.
_WRITE = _PRELUDE + _WRITE_CHECKS + """
if document then return {2} end
if counter ~= ARGV[1] then return {0, counter} end
local moved = chained_to(ARGV[2])
if moved then return {3, moved} end
local n = tonumber(ARGV[6])
for i = 0, n - 1 do
  local now = redis.call('HGET', KEYS[1], ARGV[7 + 3 * i]) or ''
  if now ~= ARGV[8 + 3 * i] then return {4, ARGV[7 + 3 * i], now} end
end
for i = 0, n - 1 do
  local field, value = ARGV[7 + 3 * i], ARGV[9 + 3 * i]
  if value == '' then
    redis.call('HDEL', KEYS[1], field)
    redis.call('HDEL', KEYS[4], field)
  else
    redis.call('HSET', KEYS[1], field, value)
    redis.call('HSET', KEYS[4], field, value)
  end
end
local new = redis.call('INCR', KEYS[2])
for i = 7 + 3 * n, #ARGV do
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'entry', ARGV[i])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {1, new}
"""

#: A write of the whole state: moving the old document into the hash, or replacing
#: selections that could not be read (already copied aside). ARGV: 1 counter, 2 the
#: digest of what the writer read, 3 chain head, 4 channel, 5 message, 6 history cap,
#: 7 n, then n pairs (field, value), then the history entries. Replies as _WRITE's.
_REPLACE = _PRELUDE + _WRITE_CHECKS + """
if counter ~= ARGV[1] or digest() ~= ARGV[2] then return {0, counter} end
local moved = chained_to(ARGV[3])
if moved then return {3, moved} end
if document then
  redis.call('RENAME', KEYS[3], KEYS[6])
  if backup_kind == 'string' then redis.call('RENAME', KEYS[4], KEYS[7]) end
end
redis.call('DEL', KEYS[1], KEYS[4])
local n = tonumber(ARGV[7])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[1], ARGV[8 + 2 * i], ARGV[9 + 2 * i])
  redis.call('HSET', KEYS[4], ARGV[8 + 2 * i], ARGV[9 + 2 * i])
end
local new = redis.call('INCR', KEYS[2])
for i = 8 + 2 * n, #ARGV do
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'entry', ARGV[i])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return {1, new}
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
        self._all_keys = self.keys.script_keys()
        self._keys = self._all_keys[:5]
        #: Where a watching store keeps its last-known copy (None: nowhere, ``local_copy=off``).
        chosen = os.fspath(local_copy) if local_copy is not None else copy_option
        self.local_copy: Path | None = (
            None if chosen == "off" else Path(chosen) if chosen
            else default_local_copy(f"{url}#{prefix}"))
        self._keeping_copy = False
        self._copied: bytes | None = None
        self._copy_failed: str | None = None
        self._codec = DocumentCodec()
        #: Why Redis could not be reached at start-up (the store starts from the copy).
        self.unreachable_at_start: RedisUnavailableError | None = None
        self._quarantined: str | None = None
        #: What this process knows is stored (read, written, or brought by deltas).
        self._view: _View | None = None
        self._view_lock = threading.Lock()
        #: Per provider, the selection last encoded here for a write, with its
        #: entry_value and _entry_hash (see _entry_of).
        self._entries: dict[str, tuple[Selection, bytes, int]] = {}
        #: The watcher is subscribed and has missed nothing since the view was read.
        self._subscribed = False
        self._trusted = False
        self._read_at = 0.0  # when everything was last read (monotonic)
        no_retries = Retry(NoBackoff(), 0)  # fail fast and clearly; the watcher retries itself
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                retry=no_retries)
        except ValueError as exc:
            raise ConfigurationError(f"not a usable Redis URL: {_reason(exc)}",
                                     path=self.location) from None
        self._scripts = {name: self._client.register_script(text) for name, text in (
            ("read", _READ), ("check", _CHECK), ("write", _WRITE), ("replace", _REPLACE))}
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

    def revision_of(self, selections: Mapping[str, Selection]) -> str:
        """This backend's content hash (see :func:`revision_of`)."""
        return revision_of(selections)

    def _unavailable(self, exc: BaseException, consequence: str = "") -> RedisUnavailableError:
        if isinstance(exc, redis.AuthenticationError):
            what = f"Redis refused the credentials: {_reason(exc)}"
        elif isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
            what = f"cannot reach Redis: {_reason(exc)}"
        else:
            what = f"Redis error: {_reason(exc)}"
        return RedisUnavailableError(what + (f"; {consequence}" if consequence else ""),
                                     path=self.location)

    def _wrong_type(self, reply: list[Any], consequence: str = "") -> ConfigurationError:
        """The one clear error for a key holding what modelboard never stores there."""
        key = _text(reply[1])
        if reply[0] == -1:
            what = f"{key} holds a {_text(reply[2])}, not a {_text(reply[3])}"
        else:
            what = f"{key} holds {_text(reply[2])[:40]!r}, not a whole number"
        advice = "; delete or fix that key (modelboard recreates it)"
        return _WrongTypeError(what + (f"; {consequence}" if consequence else "") + advice,
                               path=self.location)

    def _run(self, name: str, args: list[Any], consequence: str = "") -> list[Any]:
        """Run a script; ``consequence`` is what a broken connection leaves. A key of the
        wrong type is refused before the script changes anything: a write says so."""
        try:
            keys = self._all_keys if name == "replace" else self._keys
            reply = list(self._scripts[name](keys=keys, args=args))
        except redis.RedisError as exc:
            raise self._unavailable(exc, consequence) from None
        if reply[0] in (-1, -2):
            writes = name in ("write", "replace")
            raise self._wrong_type(reply, "nothing was written" if writes else consequence)
        return reply

    def _set_view(self, view: _View, *, trusted: bool | None = None) -> None:
        """Keep ``view`` unless a newer one is already kept (numbers only grow)."""
        with self._view_lock:
            kept = self._view
            if kept is None or view.counter is None or kept.counter is None \
                    or view.counter >= kept.counter:
                self._view = view
            if trusted is not None:
                self._trusted = trusted

    # -- reading --------------------------------------------------------------------------
    def _parse_fields(self, pairs: list[tuple[str, bytes]]) -> dict[str, Selection]:
        """Fields as selections, with the file format's strict checks; ConfigurationError
        naming the field when one cannot be read."""
        if not pairs:
            return {}
        where = f"{self.location} ({self.keys.selections})"
        names = [json.dumps(name, ensure_ascii=False).encode("utf-8") for name, _ in pairs]
        document = b"{" + b",\n".join(name + b": " + value for name, (_, value)
                                      in zip(names, pairs, strict=True)) + b"}"
        try:
            parsed = parse_document(document, path=where)
        except ConfigurationError:
            parsed = None
        if parsed is not None and len(parsed) == len(pairs) and \
                all(name in parsed for name, _ in pairs):
            return parsed
        for (name, value), encoded in zip(pairs, names, strict=True):  # find which one
            try:
                alone = parse_document(b"{" + encoded + b": " + value + b"}", path=where)
            except ConfigurationError as exc:
                raise ConfigurationError(f"field {name!r}: {exc.reason}", path=where) from None
            if list(alone) != [name]:
                raise ConfigurationError(f"field {name!r}: not one JSON object", path=where)
        raise ConfigurationError("the fields cannot be read together", path=where)

    def _read_full(self, base: StoredState | None = None) -> _View:
        """Read everything stored (one script); ``base`` is built on if what is stored was
        found unreadable and copied aside."""
        subscribed = self._subscribed
        self._read_at = time.monotonic()
        reply = self._run("read", [])
        counter_text = _text(reply[1])
        counter = int(counter_text) if counter_text else None
        last = _bytes(reply[2]) or b""
        head = seal_of(last) if last else genesis_of(b"")
        document = _bytes(reply[3]) or b""
        known = self._view
        if document:
            digest = _sha1(document)
            try:
                selections = self._codec.parse(
                    document, path=f"{self.location} ({self.keys.document})")
            except ConfigurationError:
                if digest != self._quarantined or base is None:
                    raise
                return _View.of(counter, dict(base.selections), {}, {},
                                _total_of(base.selections), head, digest=digest, legacy=True,
                                replace=True)
            view = _View.of(counter, selections, {}, {}, _total_of(selections), head,
                            digest=digest, legacy=True)
        else:
            flat = [_bytes(item) or b"" for item in reply[4]]
            digest = _digest_of_fields(flat)
            raw: dict[str, bytes] = {}
            selections = {}
            pending: list[tuple[str, bytes]] = []
            try:
                for index in range(0, len(flat), 2):
                    name = flat[index].decode("utf-8")
                    value = flat[index + 1]
                    raw[name] = value
                    if known is not None and known.raw.get(name) == value:
                        selections[name] = known.read[name]
                    else:
                        pending.append((name, value))
                if pending:
                    selections.update(self._parse_fields(pending))
            except (ConfigurationError, UnicodeDecodeError) as exc:
                if digest != self._quarantined or base is None:
                    if isinstance(exc, UnicodeDecodeError):
                        raise ConfigurationError(
                            "a field name is not UTF-8",
                            path=f"{self.location} ({self.keys.selections})") from None
                    raise
                return _View.of(counter, dict(base.selections), {}, {},
                                _total_of(base.selections), head, digest=digest, replace=True)
            view = self._new_view(known, counter, selections, raw, pending, head, digest)
        self._set_view(view, trusted=subscribed)
        return view

    def _new_view(self, known: _View | None, counter: int | None,
                  selections: dict[str, Selection], raw: dict[str, bytes],
                  parsed: list[tuple[str, bytes]], head: str | None, digest: str) -> _View:
        """The view of a full read, reusing what is already known: the same selections
        object when nothing differs, and the content hash updated for what does."""
        if known is None or known.legacy or known.replace:
            ordered = {name: selections[name] for name in sorted(selections)}
            return _View.of(counter, ordered, raw, ordered, _total_of(ordered), head,
                            digest=digest)
        if not parsed and len(raw) == len(known.raw) and known.read is known.selections:
            return _View.of(counter, known.selections, known.raw, known.read, known.total,
                            head, digest=digest)
        total = known.total
        before = known.selections
        for name, selection in selections.items():
            old = before.get(name)
            if old is not selection:
                if old is not None:
                    total -= _entry_hash(name, old)
                total += _entry_hash(name, selection)
        for name in before.keys() - selections.keys():
            total -= _entry_hash(name, before[name])
        return _View.of(counter, selections, raw, selections, total % _MODULUS, head,
                        digest=digest)

    def _state_of(self, view: _View) -> StoredState:
        return StoredState(view.selections, view.revision, token=view.token,
                           exists=view.exists, changed=view.changed, since=view.since)

    def token(self) -> object:
        """(counter, revision) of what is stored, or (counter, server digest) when that
        content is not the one this process holds (a hand edit changes it too)."""
        if self._trusted:
            view = self._view
            if view is not None:
                return view.token
        subscribed = self._subscribed
        reply = self._run("check", [])
        counter_text = _text(reply[1])
        counter = int(counter_text) if counter_text else None
        digest = _text(reply[2])
        view = self._view
        if view is not None and view.counter == counter and view.digest == digest:
            if subscribed:  # what we hold is what is stored, and deltas come from here on
                with self._view_lock:
                    if self._view is view and self._subscribed:
                        self._trusted = True
            return view.token
        return (counter, digest)

    def load(self) -> StoredState:
        view = self._view
        if self._trusted and view is not None:
            return self._state_of(view)
        return self._state_of(replace(self._read_full(), changed=None, since=None))

    def _keep_copy(self) -> None:
        """Write the local copy if it is behind what this process holds."""
        view = self._view
        if view is None or view.replace or self.local_copy is None:
            return
        rendered = self._codec.render(view.selections)
        try:
            if self._copied != _digest(rendered):
                replace_private_file(self.local_copy, rendered)
                self._copied = _digest(rendered)
        except (OSError, ConfigurationError) as exc:
            if self._copy_failed != str(exc):
                log.warning("%s: cannot keep the local copy %s: %s", self.location,
                            self.local_copy, getattr(exc, "strerror", None) or exc)
            self._copy_failed = str(exc)

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
        return StoredState(selections, revision_of(selections), token=None)

    def load_backup(self) -> StoredState | None:
        try:
            kind = _text(self._client.type(self.keys.backup))
            if kind == "string":  # the old layout's backup: a whole document
                data = _bytes(self._client.get(self.keys.backup))
                flat: list[bytes] = []
            elif kind == "hash":
                data = None
                flat = [_bytes(item) or b"" for pair in
                        self._client.hgetall(self.keys.backup).items() for item in pair]
            else:
                return None
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        try:
            if data is not None:
                selections = parse_document(data, path=f"{self.location} ({self.keys.backup})")
            else:
                selections = self._parse_fields(
                    [(flat[i].decode("utf-8"), flat[i + 1]) for i in range(0, len(flat), 2)])
        except (ConfigurationError, UnicodeDecodeError) as exc:
            log.warning("backup is not usable either: %s", exc)
            return None
        if not selections:
            return None
        return StoredState(selections, revision_of(selections), token=None)

    def quarantine(self) -> str | None:
        """Copy unreadable selections to ``<key>:corrupt:<UTC time>``."""
        if self.read_only:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.keys.corrupt(stamp)
        try:
            self._read_full()
        except RedisUnavailableError:
            raise
        except _WrongTypeError:
            return None  # what failed is a key of the wrong type: nothing to copy
        except ConfigurationError:
            pass
        else:
            return None  # readable after all
        try:
            reply = self._run("check", [], "nothing was copied")
            source = self.keys.document if self._client.exists(self.keys.document) \
                else self.keys.selections
            self._client.copy(source, aside)
        except redis.RedisError as exc:
            raise self._unavailable(exc, "nothing was copied") from None
        self._quarantined = _text(reply[2])
        return f"{self.location} ({aside})"

    # -- writing --------------------------------------------------------------------------
    def commit(self, change: Callable[[Mapping[str, Selection]], Commit | None], *,
               base: StoredState) -> StoredState | None:
        """One script over the providers the change touches; on a lost race, again on
        the newer state.

        The first attempt builds on what this process holds when the caller's base is
        that; a change that refuses (conflict, lock, validation) is only believed on the
        latest state, read afresh.
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        view = self._view
        belief = view if view is not None and view.token == base.token else None
        fresh = False
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        attempt = 0
        while True:
            if belief is None:
                belief, fresh = self._read_full(base), True
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
            outcome = self._store(belief, result)
            if isinstance(outcome, _View):
                self._quarantined = None
                return self._state_of(outcome)
            attempt += 1
            if time.monotonic() > deadline:
                raise RedisUnavailableError(
                    f"gave up after {attempt} attempts: other writers kept changing the "
                    "selections; nothing was written", path=self.location)
            if attempt > 3:  # a crowd of writers: spread them out
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
            belief = None if outcome is None else outcome.belief
            if belief is not None:
                fresh = False

    def _chain_head(self) -> str:
        """The ``prev`` of the next entry when the stream ends with unchained entries
        (written before the chain): the genesis over all of them, read once."""
        return genesis_of(b"".join(value + b"\n" for _id, value in self._stream()))

    def _stream(self) -> list[tuple[str, bytes]]:
        """Every history entry, oldest first: (stream id, the ``entry`` field)."""
        try:
            entries: list[Any] = self._client.xrange(self.keys.history) or []
        except redis.ResponseError as exc:
            raise ConfigurationError(f"{self.keys.history}: {_reason(exc)}",
                                     path=self.location) from None
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return [(_text(stream_id), _bytes((fields or {}).get(b"entry")) or b"")
                for stream_id, fields in entries]

    def _entry_of(self, provider: str, selection: Selection) -> tuple[bytes, int]:
        """(entry_value, _entry_hash) of a provider's selection, each computed once: a
        write encodes and hashes the new selection, and the next write of that provider
        finds both here instead of redoing them for the old one."""
        known = self._entries.get(provider)
        if known is not None and known[0] is selection:
            return known[1], known[2]
        value = entry_value(selection)
        digest = _entry_hash(provider, selection, value)
        self._entries[provider] = (selection, value, digest)
        return value, digest

    def _store(self, belief: _View, result: Commit) -> _View | _Again | None:
        """Try to store ``result``, computed on ``belief``: the new view; _Again with the
        belief to compute it on again (the history grew by hand); None when something
        else moved (read again and retry)."""
        changed: list[str] = []
        for entry in result.history:
            if entry.provider not in changed:
                changed.append(entry.provider)
        after = result.selections
        head = belief.head if belief.head is not None else self._chain_head()
        total = belief.total
        whole = belief.legacy or belief.replace
        values: dict[str, bytes] = {}
        expected_values: dict[str, bytes] = {}
        for provider in changed:
            old, new = belief.selections.get(provider), after.get(provider)
            expected_values[provider] = b""
            if old is not None:
                old_value, old_hash = self._entry_of(provider, old)
                total -= old_hash
                expected_values[provider] = belief.stored_bytes(provider, old_value)
            values[provider] = b""
            if new is not None:
                values[provider], new_hash = self._entry_of(provider, new)
                total += new_hash
        total %= _MODULUS
        if whole:
            values = {provider: entry_value(selection) for provider, selection in after.items()}
        revision = _revision_of_total(total)
        number = (belief.counter or 0) + 1
        entries = stamp_entries(result.history, number=number, base_revision=belief.revision,
                                revision=revision, before=belief.selections, after=after)
        lines, new_head = seal_chain((entry.to_json() for entry in entries), head)
        message = json.dumps({
            "rev": number, "revision": revision, "head": new_head,
            "changes": None if whole else {provider: value.decode("utf-8") or None
                                           for provider, value in values.items()}},
            ensure_ascii=False)
        expected = "" if belief.counter is None else str(belief.counter)
        consequence = ("the connection broke while storing: the change may or may not be "
                       "stored; reload to check")
        try:
            if whole:
                pairs = [item for provider, value in values.items() for item in (provider, value)]
                reply = self._run("replace", [
                    expected, belief.digest or "", head, self.keys.channel, message,
                    self.history_limit, len(values), *pairs, *lines], consequence)
            else:
                triples = [item for provider, value in values.items() for item in
                           (provider, expected_values[provider], value)]
                reply = self._run("write", [
                    expected, head, self.keys.channel, message, self.history_limit,
                    len(values), *triples, *lines], consequence)
        except RedisUnavailableError as exc:
            if "connecting to" in str(exc):  # redis-py says so when nothing left
                raise RedisUnavailableError(exc.reason.split(";")[0] + "; nothing was written",
                                            path=self.location) from None
            raise
        if reply[0] == 1:
            selections = after if not whole else dict(after)
            raw, read = (belief.raw, belief.read) if not whole else ({}, {})
            view = _View.of(int(reply[1]), selections, raw, read, total, new_head,
                            revision=revision,
                            changed=None if whole else frozenset(changed),
                            since=belief.token)
            self._set_view(view)
            return view
        if reply[0] == 3:  # the history grew without the counter (by hand): chain onto it
            return _Again(replace(belief, head=_text(reply[1])))
        return None  # another write, the old document, or a field changed by hand

    def import_state(self, selections: Mapping[str, Selection],
                     history: list[HistoryEntry]) -> StoredState:
        """Store ``selections`` and ``history`` (oldest first, chained anew) into an empty key.

        Refuses with ConfigurationError if selections or history are already stored.
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        fields = {provider: entry_value(selection) for provider, selection in selections.items()}
        lines, head = seal_chain((entry.to_json() for entry in history), genesis_of(b""))
        total = _total_of(selections)
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.watch(self.keys.selections,  # type: ignore[no-untyped-call]
                           self.keys.document, self.keys.counter, self.keys.history)
                if pipe.exists(self.keys.selections, self.keys.document, self.keys.history):
                    raise ConfigurationError(
                        f"already holds selections or history under {self.keys.prefix}:*; "
                        "nothing was copied", path=self.location)
                counter = int(pipe.get(self.keys.counter) or 0) + 1
                # The copied state is the last copied revision: its number goes on.
                counter = max(counter, max((e.number or 0 for e in history), default=0))
                pipe.multi()
                items = list(fields.items())
                for start in range(0, len(items), _CHUNK):
                    chunk = dict(items[start:start + _CHUNK])
                    pipe.hset(self.keys.selections, mapping=chunk)  # type: ignore[arg-type]
                    pipe.hset(self.keys.backup, mapping=chunk)  # type: ignore[arg-type]
                pipe.set(self.keys.counter, counter)
                for line in lines:
                    pipe.xadd(self.keys.history, {"entry": line}, maxlen=self.history_limit,
                              approximate=True)
                pipe.publish(self.keys.channel, json.dumps({"rev": counter, "changes": None}))
                pipe.execute()
        except redis.WatchError:
            raise ConfigurationError("another writer stored selections meanwhile; nothing "
                                     "was copied", path=self.location) from None
        except redis.RedisError as exc:
            raise self._unavailable(exc, "nothing was copied") from None
        view = _View.of(counter, dict(selections), fields, dict(selections), total, head)
        self._set_view(view)
        return self._state_of(view)

    def write_problem(self) -> str | None:
        """None: only a write can tell whether the server (or its ACL) accepts it."""
        return None

    # -- history --------------------------------------------------------------------------
    def iter_history(self) -> Iterator[HistoryEntry]:
        """History entries, newest first, read a page at a time as far as asked."""
        newest = "+"
        page = 100
        while True:
            try:
                batch = self._client.xrevrange(self.keys.history, max=newest, min="-",
                                               count=page)
            except redis.RedisError as exc:
                raise self._unavailable(exc) from None
            if not batch:
                return
            for stream_id, fields in batch:
                entry = self._history_entry(_text(stream_id), fields)
                if entry is not None:
                    yield entry
            newest = "(" + _text(batch[-1][0])  # exclusive: go on below it
            page = min(page * 4, 2000)

    def read_history(self, provider: str | None = None,
                     limit: int | None = None) -> list[HistoryEntry]:
        entries: list[HistoryEntry] = []
        for entry in self.iter_history():
            if provider is None or entry.provider == provider:
                entries.append(entry)
                if limit is not None and len(entries) >= limit:
                    break
        return entries

    def _history_entry(self, stream_id: str, fields: Any) -> HistoryEntry | None:
        try:
            return HistoryEntry.from_json(json.loads(fields[b"entry"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s: skipping unreadable history entry %s: %s", self.location,
                        stream_id, exc)
            return None

    def verify_history(self) -> Verification:
        """Walk the stream's hash chain; the first broken link by entry number (1 = the
        oldest kept) and stream id."""
        entries = self._stream()
        try:
            info: Any = self._client.xinfo_stream(self.keys.history) if entries else {}
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        # A raw newline cannot be in an entry modelboard wrote; one put there by hand
        # stays inside its entry (escaped), so entries and line numbers stay one to one.
        lines = [value.replace(b"\n", b"\\n") + b"\n" for _id, value in entries]
        ids = [stream_id for stream_id, _value in entries]
        added = info.get("entries-added") if isinstance(info, dict) else None
        dropped = added - len(entries) if isinstance(added, int) else 0
        # Writes trim the stream only down to history_limit entries (MAXLEN ~ keeps at
        # least that many); below it, a missing entry was deleted, and the chain from the
        # genesis shows where.
        trimmed = dropped > 0 and len(entries) >= self.history_limit
        notes = [f"{dropped} older entries were trimmed; the chain is checked from the "
                 "oldest kept"] if trimmed else \
            [f"{dropped} entries were deleted from the stream"] if dropped > 0 else []
        result = verify_chain([(self.keys.history, b"".join(lines))], anchored=not trimmed,
                              notes=notes)
        if result.where is not None and 0 < result.where[1] <= len(ids):
            index = result.where[1]
            result = replace(result, problem=f"{result.problem} (entry {index}, stream id "
                                             f"{ids[index - 1]})")
        return result

    # -- watching -------------------------------------------------------------------------
    def _keyspace_channel(self) -> tuple[str, ...] | None:
        """The keyspace channels the server announces hand edits on, if it does: the
        hash's (``h`` or ``A``) and the old document's (``$`` or ``A``), with ``K``."""
        try:
            setting = self._client.config_get("notify-keyspace-events")
        except redis.ResponseError:  # CONFIG refused (a managed server, an ACL): poll
            return None
        flags = _text(next(iter(dict(setting).values()), ""))
        if "K" not in flags:
            return None
        database = self._client.connection_pool.connection_kwargs.get("db", 0)
        channels = tuple(f"__keyspace@{database}__:{key}" for key, letter in (
            (self.keys.selections, "h"), (self.keys.document, "$")) if letter in flags
            or "A" in flags)
        return channels or None

    def _apply(self, data: bytes) -> str:
        """A change message applied to the view: ``applied``, ``old`` (already held),
        or ``gap`` (a number missed, a message not understood, a content hash that
        does not match: reload everything)."""
        try:
            message = json.loads(data)
            number, changes = message["rev"], message["changes"]
            if not isinstance(number, int) or not (changes is None or isinstance(changes, dict)):
                return "gap"
        except (ValueError, KeyError, TypeError):
            return "gap"
        view = self._view
        if view is None or view.legacy or view.replace:
            return "gap"
        known = view.counter or 0
        if number <= known:
            return "old"
        if number != known + 1 or changes is None:
            return "gap"
        try:
            fields = [(str(name), value.encode("utf-8")) for name, value in changes.items()
                      if value is not None]
            parsed = self._parse_fields(fields)
        except (ConfigurationError, AttributeError, UnicodeError):
            return "gap"
        selections = dict(view.selections)
        total = view.total
        for name in changes:
            old = selections.get(name)
            if old is not None:
                total -= _entry_hash(name, old)
            if changes[name] is None:
                selections.pop(name, None)
        for name, _value in fields:  # in place: a provider keeps its position
            selections[name] = parsed[name]
            total += _entry_hash(name, parsed[name])
        total %= _MODULUS
        new = _View.of(number, selections, view.raw, view.read, total,
                       str(message.get("head") or "") or None,
                       changed=frozenset(changes), since=view.token)
        if new.revision != message.get("revision"):
            return "gap"  # the writer built on another content (a hand edit we missed)
        with self._view_lock:
            if self._view is not view:
                return "gap"  # a write here moved it meanwhile: reload to be sure
            self._view = new
        return "applied"

    def _unchanged(self, suspect: bool, announced: bool) -> bool:
        """The periodic check: is what is stored what this process holds?

        After deltas the server's digest of the new content is not known here, so the
        check reads everything. Where keyspace notifications announce hand edits
        (``announced``) that is done at most every RESYNC_INTERVAL_S, unless an event no
        write explained makes it urgent; without them, at the first check after a write,
        so that a hand edit made right after it is noticed as quickly as any other.
        """
        view = self._view
        if view is not None and view.digest is None and not suspect and announced \
                and time.monotonic() - self._read_at < RESYNC_INTERVAL_S:
            return True
        reply = self._run("check", [])
        counter_text = _text(reply[1])
        counter = int(counter_text) if counter_text else None
        view = self._view
        return view is not None and view.counter == counter and view.digest == _text(reply[2])

    def follow(self, stop: threading.Event, armed: threading.Event) -> Iterator[None]:
        """Yield whenever what this process holds is behind what is stored.

        Deltas are applied here, so the store's reload that follows a yield costs no
        round trip; a gap makes the next reload read everything.
        """
        self._keeping_copy = not self.read_only and self.local_copy is not None
        backoff = BACKOFF_FIRST_S
        lost = False
        mode: str | None = None
        while not stop.is_set():
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
            try:
                keyspace = self._keyspace_channel() or ()
                channels = [self.keys.channel, *keyspace]
                pubsub.subscribe(*channels)
                confirmed = 0
                while not stop.is_set() and confirmed < len(channels):
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is not None and message["type"] == "subscribe":
                        confirmed += 1
                if stop.is_set():
                    return
                everything = len(keyspace) == 2
                now = "keyspace notifications" if everything else \
                    f"a check every {HAND_EDIT_POLL_S:g} s"
                if now != mode:
                    log.debug("%s: hand edits are noticed through %s", self.location, now)
                    mode = now
                if lost:
                    log.debug("%s: Redis is reachable again", self.location)
                    lost = False
                with self._view_lock:
                    self._subscribed, self._trusted = True, False
                armed.set()
                backoff = BACKOFF_FIRST_S
                interval = RESYNC_INTERVAL_S if everything else HAND_EDIT_POLL_S
                yield  # resync: whatever changed while we were not subscribed
                next_check = time.monotonic() + interval
                suspect = False
                while not stop.is_set():
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is None:
                        if suspect or time.monotonic() >= next_check:
                            urgent, suspect = suspect, False
                            next_check = time.monotonic() + interval
                            if not self._unchanged(urgent, everything):
                                self._trusted = False
                                yield
                        if self._keeping_copy:
                            self._keep_copy()
                        continue
                    behind = False
                    while message is not None:  # a burst: apply all, then one reload
                        if message["type"] == "message":
                            if _text(message["channel"]) != self.keys.channel:
                                suspect = True  # a keyspace event: a write, or a hand edit
                            else:
                                outcome = self._apply(message["data"])
                                suspect = False  # the write explains its keyspace events
                                if outcome == "gap":
                                    self._trusted = False
                                behind = behind or outcome != "old"
                        message = pubsub.get_message(timeout=0)
                    if behind:
                        yield
            except (redis.RedisError, OSError, ConfigurationError) as exc:
                # The store logs the outage (its load error) once, and its end.
                lost = True
                with self._view_lock:
                    self._subscribed, self._trusted = False, False
                log.debug("%s: no Redis (%s); next attempt in %.2f s",
                          self.location, _reason(exc), backoff)
                armed.set()  # the resync on reconnection reports whatever changes meanwhile
                yield  # let the store notice (and show) the outage
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            finally:
                with self._view_lock:
                    self._subscribed, self._trusted = False, False
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()

    def after_fork(self) -> None:
        """In a forked child: no subscription came along, and no lock is held."""
        self._view_lock = threading.Lock()
        self._subscribed = self._trusted = False

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.close()
