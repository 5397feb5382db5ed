"""SelectionStore: the API the proxy, the editor and the command line share.

Reads are a dict lookup in an immutable Snapshot swapped in one assignment: no lock,
no I/O. Writes go through the backend's commit, which re-reads the stored state under
the writers' lock; each change is re-applied on top of whatever others wrote since,
unless they changed the same provider, which is a ConflictError.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from . import fleet, rules
from .actor import default_actor
from .backend import Backend, Commit, StoredState
from .catalog import Catalog
from .errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    ModelboardError,
    ReadOnlyError,
)
from .fileformat import render_document, revision_of_bytes
from .logs import logger
from .models import (
    ChangeEvent,
    HistoryEntry,
    Selection,
    Snapshot,
    check_name,
    diff_snapshots,
    utc_now,
)
from .rules import UNSET, Operation
from .serving import EntryProblem, derive_served
from .text import strip_controls

if TYPE_CHECKING:
    from . import versions
    from .history import Revision, Verification

__all__ = ["UNSET", "Operation", "SelectionStore", "Transaction"]

log = logger(__name__)


Subscriber = Callable[[ChangeEvent], None]
#: Longest start_watching waits for the watch to be armed, and stop_watching for it to end.
WATCH_START_TIMEOUT_S = 10.0
_EMPTY = Snapshot({}, revision_of_bytes(render_document({})))
#: Problems logged one by one per install; more are summed up in one line.
_LOGGED_PROBLEMS = 20


class Transaction:
    """Changes collected inside ``with store.transaction() as tx:``, written as one.

    Each call is checked at once (an unknown model fails on its line); all are
    checked again against the latest stored state at commit, and stored atomically.
    """

    def __init__(self, store: SelectionStore, actor: str, reason: str | None = None) -> None:
        self._store = store
        self._actor = actor
        #: Why the change is made (``--reason``): recorded on each of its history lines.
        self._reason = reason
        self._operations: list[Operation] = []
        self._before: Mapping[str, Selection] = {}
        self._after: Mapping[str, Selection] = {}

    def set_model_selection(self, provider: str, model_name: str, *,
                            expect: str | None = UNSET) -> None:
        self._store.catalog.validate(provider, model_name)
        self._operations.append(Operation("set", provider, model_name, expect=expect))

    def remove_model_selection(self, provider: str, *, expect: str | None = UNSET) -> None:
        check_name("provider", provider)
        self._operations.append(Operation("remove", provider, expect=expect))

    def lock(self, provider: str, *, reason: str | None = None) -> None:
        check_name("provider", provider)
        self._operations.append(Operation("lock", provider, reason=_clean_text(reason)))

    def unlock(self, provider: str) -> None:
        check_name("provider", provider)
        self._operations.append(Operation("unlock", provider))

    @property
    def operations(self) -> tuple[Operation, ...]:
        return tuple(self._operations)

    @property
    def before(self) -> Mapping[str, Selection]:
        """After commit: the stored state the changes were applied to."""
        return self._before

    @property
    def after(self) -> Mapping[str, Selection]:
        """After commit: the state they left (``before`` when nothing changed)."""
        return self._after


def _clean_text(text: str | None) -> str | None:
    """A lock reason or actor fit for one terminal line (both are shown to operators)."""
    if text is None:
        return None
    return strip_controls(text, replacement=" ").strip()[:500] or None


class SelectionStore:
    """Per-provider model selections over a backend (a file by default).

    Open one with :func:`modelboard.core.open_store`. Two views: ``snapshot`` is what a
    proxy serves (per provider, the last value that passed validation), and
    ``stored_snapshot`` is exactly what is stored (what an editor shows and writes build
    on). They differ only where ``problems()`` says why.
    """

    def __init__(self, backend: Backend, *, catalog: Catalog | None = None,
                 actor: str | None = None, report: bool = True,
                 reader_name: str | None = None) -> None:
        self._backend = backend
        self._catalog = catalog if catalog is not None else Catalog.default()
        self.actor = _clean_text(actor) or default_actor()
        self._snapshot = _EMPTY
        self._stored = _EMPTY
        self._problems: dict[str, EntryProblem] = {}
        #: provider -> the model its newest model-changing history entry set (None for a
        #: remove), read once per install that needs it (see ``_vouched``).
        self._newest_set: dict[str, str | None] | None = None
        self._state = StoredState({}, _EMPTY.revision, token=None, exists=False)
        #: Why the stored state could not be loaded the last time it was read; None if it was.
        self.load_error: ConfigurationError | None = None
        #: Set when start-up found a corrupt file and recovered: what happened.
        self.recovery_notice: str | None = None
        #: When the served state was last loaded successfully (UTC); None before that.
        self.loaded_at: datetime | None = None
        self._arm_threads()
        self._subscribers: tuple[Subscriber, ...] = ()
        self._watch_users = 0
        self._load_at_start()
        #: The heartbeat that tells the fleet what this store serves (see core/fleet.py).
        self._reporter = fleet.reporter_for(self, report=report, reader_name=reader_name)
        self._fleet: fleet.Fleet | None = None
        _STORES.add(self)

    def _arm_threads(self) -> None:
        """Fresh locks, queue and thread slots (at creation, and in a forked child)."""
        self._state_lock = threading.RLock()
        self._events: queue.SimpleQueue[ChangeEvent | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._watch_lock = threading.Lock()
        self._watch_thread: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._watch_ready = threading.Event()

    def _after_fork_in_child(self) -> None:
        """A forked child has none of the parent's threads: start its own.

        Locks another thread held at the fork would stay held forever in the child, so
        they are made anew; a store that was watching watches again (without waiting,
        since this runs inside ``fork()``), and subscribers get a dispatcher again.
        """
        watching = self._watch_thread is not None
        self._arm_threads()
        after_fork = getattr(self._backend, "after_fork", None)
        if after_fork is not None:
            after_fork()
        if self._subscribers:
            self._start_dispatcher()
        if watching:
            users, self._watch_users = self._watch_users, 0
            self.start_watching(wait=False)
            self._watch_users = users
        log.debug("%s: re-armed after fork in process %d", self.location, os.getpid())

    # -- reading (the proxy's hot path) -----------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """What the proxy serves; hold on to it for a consistent view across several reads.

        Per provider, the last stored value that passed validation in this process (see
        ``problems()`` for entries served in place of, or despite, the catalog). Its
        revision is that of the stored state it was derived from.
        """
        return self._snapshot

    @property
    def stored_snapshot(self) -> Snapshot:
        """Exactly what is stored, valid or not (what an editor shows)."""
        return self._stored

    def get_model_selection(self, provider: str) -> Selection | None:
        """The provider's served selection, or None. A dict lookup: no lock, no I/O."""
        return self._snapshot._selections.get(provider)

    def model_for(self, provider: str, default: str) -> str:
        """The model to use for ``provider``: the served selection's, else ``default``."""
        selection = self._snapshot._selections.get(provider)
        return default if selection is None else selection.model_name

    def get_all_selections(self) -> Mapping[str, Selection]:
        """Every served selection, as a read-only mapping that never changes under you."""
        return self._snapshot

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        """A new catalog re-judges every stored entry; served values it rejects stay (drift)."""
        with self._state_lock:
            self._catalog = catalog
            self._serve(self._stored, stored_before=None)

    @property
    def read_only(self) -> bool:
        return self._backend.read_only

    @property
    def location(self) -> str:
        return self._backend.location

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def exists(self) -> bool:
        """False until something has been stored (a file not yet created)."""
        return self._state.exists

    def problems(self) -> tuple[EntryProblem, ...]:
        """Stored entries the catalog rejects, each with what is served for its provider."""
        return tuple(self._problems.values())

    def warnings(self) -> list[str]:
        """One line per stored entry the catalog rejects (see ``problems()``)."""
        return [problem.reason for problem in self._problems.values()]

    def status(self) -> dict[str, Any]:
        """A JSON-able health record, for a proxy's health endpoint."""
        kind = type(self._backend).__name__.removesuffix("Backend").lower() or "custom"
        return {
            "backend": kind,
            "location": self.location,
            "revision": self._snapshot.revision,
            "providers": len(self._snapshot),
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at is not None else None,
            "load_error": str(self.load_error) if self.load_error is not None else None,
            "warnings": self.warnings(),
            "problems": [problem.to_json() for problem in self._problems.values()],
            "watching": self.watching,
            "pid": os.getpid(),
        }

    def history(self, provider: str | None = None, *,
                limit: int | None = None) -> list[HistoryEntry]:
        """Changes, newest first: time, actor, provider, action, old and new model."""
        return self._backend.read_history(provider, limit)

    def revisions(self, *, provider: str | None = None,
                  limit: int | None = None) -> list[Revision]:
        """Whole writes, newest first (optionally only those touching ``provider``)."""
        from . import versions  # only for the revision commands
        return versions.revisions(self._backend, provider=provider, limit=limit)

    def document_at(self, number: int) -> dict[str, Selection]:
        """The whole document as of revision ``number`` (ConfigurationError if unknown)."""
        from . import versions  # only for the revision commands
        return versions.document_at(self._backend, number)

    def plan_rollback(self, number: int, *,
                      include_locked: bool = False) -> versions.RollbackPlan:
        """What ``rollback(number)`` would change now, writing nothing (to confirm it)."""
        from . import versions  # only for the revision commands
        return versions.plan_rollback(number, self.stored_snapshot, self.document_at(number),
                                      include_locked=include_locked)

    def rollback(self, number: int, *, reason: str | None = None, include_locked: bool = False,
                 actor: str | None = None,
                 planned: versions.RollbackPlan | None = None) -> versions.Rollback:
        """Make the document equal to revision ``number`` in one write ("rollback to N").

        Locked providers stay as they are (and are named) unless ``include_locked``; a
        change by someone else since this store loaded is a conflict, as for any write.
        With ``planned`` (from ``plan_rollback``, what an operator confirmed), a rollback
        that would now write or keep anything else is a ConflictError, nothing written.
        """
        from . import versions  # only for the revision commands
        return versions.rollback(self, number, reason=reason, include_locked=include_locked,
                                 actor=actor, planned=planned)

    def verify_history(self) -> Verification | None:
        """Walk the history's hash chain (``modelboard audit verify``); None when this
        store's backend keeps no chain to verify."""
        verify = getattr(self._backend, "verify_history", None)
        if verify is None:
            return None
        result: Verification = verify()
        return result

    # -- serving ----------------------------------------------------------------------------
    def _serve(self, stored: Snapshot, *, stored_before: Snapshot | None,
               changed: frozenset[str] | None = None) -> None:
        """Install ``stored`` and derive what is served from it; log problems that change.

        ``changed``: the only providers that differ from ``stored_before``, when known.
        """
        self._newest_set = None  # the history may have grown since the last install
        served, found = derive_served(
            stored, catalog=self._catalog, served_before=self._snapshot,
            stored_before=stored_before, problems_before=self._problems,
            vouched=self._vouched, changed=changed)
        problems = {problem.provider: problem for problem in found}
        new = [problem for provider, problem in problems.items()
               if (before := self._problems.get(provider)) is None
               or _problem_key(before) != _problem_key(problem)]
        for problem in new[:_LOGGED_PROBLEMS]:
            log.warning("%s: %s", self.location, problem.describe())
        if len(new) > _LOGGED_PROBLEMS:
            log.warning("%s: and %d more entries the catalog rejects (see problems())",
                        self.location, len(new) - _LOGGED_PROBLEMS)
        cleared = [provider for provider in self._problems if provider not in problems]
        for provider in cleared[:_LOGGED_PROBLEMS]:
            now = stored.get(provider)
            what = f"serving {now.model_name}" if now is not None else "entry removed"
            log.info("%s: %s: the entry is valid again (%s)", self.location, provider, what)
        if len(cleared) > _LOGGED_PROBLEMS:
            log.info("%s: and %d more entries are valid again or gone", self.location,
                     len(cleared) - _LOGGED_PROBLEMS)
        self._problems = problems
        self._stored = stored
        # With nothing rejected the two views are one object: no second copy of a large
        # store, and a subscriber's ``event.new`` is ``store.snapshot``.
        view = stored if not problems else Snapshot(served, stored.revision)
        self._snapshot = view  # the one assignment readers see

    def _vouched(self, provider: str, selection: Selection) -> bool:
        """Did modelboard itself set this value (validated then), as its history shows?

        The rule for catalog drift at start-up: the provider's newest model-changing
        history entry (a set or a remove; locks do not change the model) set this very
        model. A hand edit leaves no history, so a typo is never vouched for. The history
        is read once per install, however many entries are rejected.
        """
        if self._newest_set is None:
            newest: dict[str, str | None] = {}
            lazy = getattr(self._backend, "iter_history", None)
            try:
                entries = lazy() if lazy is not None else iter(self._backend.read_history())
                for entry in entries:
                    if entry.action in ("set", "remove") and entry.provider not in newest:
                        newest[entry.provider] = entry.new if entry.action == "set" else None
            except ModelboardError as exc:
                log.debug("%s: history unreadable (%s); no value is vouched for",
                          self.location, exc)
            self._newest_set = newest
        return self._newest_set.get(provider) == selection.model_name

    # -- loading ----------------------------------------------------------------------------
    def _load_at_start(self) -> None:
        try:
            state = self._backend.load()
        except ConfigurationError as error:
            if isinstance(error, BackendUnavailableError):
                # Unreachable is not corrupt: nothing to copy aside. Start from the
                # last-known copy a watching store kept, if the backend has one.
                load_copy = getattr(self._backend, "load_local_copy", None)
                copy = load_copy() if load_copy is not None else None
                if copy is None:
                    raise
                self.load_error = error
                self.recovery_notice = (f"{error}; started from the local copy "
                                        f"{getattr(self._backend, 'local_copy', '')} "
                                        f"(revision {copy.revision}); reconnecting")
                log.warning("%s", self.recovery_notice)
                self._state = copy
                self._serve(Snapshot(copy.selections, copy.revision), stored_before=None)
                return
            self.load_error = error
            kept = ""
            try:
                aside = self._backend.quarantine() if not self.read_only else None
                kept = f"; copied to {aside}" if aside else ""
            except ConfigurationError as copy_error:
                # Not copied aside means not quarantined: writes keep refusing to
                # overwrite it, so nothing is lost by starting anyway.
                kept = f"; not copied aside ({copy_error.reason})"
            backup = self._backend.load_backup()
            start = "the last good backup" if backup is not None else "an empty state"
            self.recovery_notice = f"{error}{kept}; started from {start}"
            log.error("%s", self.recovery_notice)
            state = backup if backup is not None else self._state
            state = replace(state, token=None)  # the file on disk is not this state
        else:
            self.loaded_at = datetime.now(UTC)
        self._state = state
        self._serve(Snapshot(state.selections, state.revision), stored_before=None)

    def reload(self) -> Snapshot:
        """Re-read the backend now. A bad state raises ConfigurationError; the last good stays."""
        self._refresh(raise_errors=True)
        return self._snapshot

    def _refresh(self, *, raise_errors: bool = False) -> None:
        """Load the stored state if it changed; install it or record why it could not be."""
        with self._state_lock:
            try:
                token = self._backend.token()
                if token is not None and token == self._state.token:
                    if self.load_error is not None:
                        # Back to what we hold (a file restored, a server reachable
                        # again): clear the error and tell subscribers.
                        self._install(self._state, "external")
                    return
                state = self._backend.load()
            except ConfigurationError as error:
                self._record_error(error)
                if raise_errors:
                    raise
                return
            if not state.exists:
                if self._state.exists:
                    self._record_error(ConfigurationError("file is missing; keeping the last "
                                                          "good state", path=self.location))
                    if raise_errors:
                        raise self.load_error  # type: ignore[misc]
                return
            self._install(state, "external")

    def _record_error(self, error: ConfigurationError) -> None:
        if self.load_error is not None and str(self.load_error) == str(error):
            return
        self.load_error = error
        log.warning("%s", error)
        if self._reporter is not None:
            self._reporter.poke()
        self._publish(ChangeEvent(self._stored, self._stored, (), error, "external",
                                  self._snapshot))

    def _install(self, state: StoredState, source: Literal["local", "external"]) -> None:
        recovered = self.load_error is not None
        self.load_error = None
        self.loaded_at = datetime.now(UTC)
        if recovered:
            log.info("%s: loaded again (revision %s); the load error is cleared",
                     self.location, state.revision)
        old = self._stored
        # A backend that knows what changed since the state held here (a Redis delta)
        # spares the O(n) judging and diffing of every provider.
        delta = state.changed if state.changed is not None and state.since is not None \
            and state.since == self._state.token else None
        self._state = state
        if state.revision == old.revision and not recovered:
            return
        selections = state.selections
        new = Snapshot.adopting(selections, state.revision) \
            if state.changed is not None and type(selections) is dict \
            else Snapshot(selections, state.revision)
        self._serve(new, stored_before=old, changed=delta)
        if self._reporter is not None:
            self._reporter.poke()
        if self._subscribers:  # the diff is for subscribers; without any, skip its O(n)
            self._publish(ChangeEvent(old, new, diff_snapshots(old, new, only=delta), None,
                                      source, self._snapshot))

    # -- writing ----------------------------------------------------------------------------
    def set_model_selection(self, provider: str, model_name: str, *, actor: str | None = None,
                            expect: str | None = UNSET, reason: str | None = None) -> Selection:
        """Select ``model_name`` for ``provider`` after validating it against the catalog.

        ``expect`` (a model name, or None for "no selection") refuses with ConflictError
        if the stored value differs; without it, a change made by someone else since
        this store last loaded is a conflict. ``reason`` (why) goes into the history.
        """
        with self.transaction(actor=actor, reason=reason) as tx:
            tx.set_model_selection(provider, model_name, expect=expect)
        return tx.after[provider]

    def bulk_set_model_selections(self, selections: Mapping[str, str], *,
                                  actor: str | None = None,
                                  reason: str | None = None) -> dict[str, Selection]:
        """Set several providers in one atomic write: all of them, or none."""
        with self.transaction(actor=actor, reason=reason) as tx:
            for provider, model_name in selections.items():
                tx.set_model_selection(provider, model_name)
        return {provider: tx.after[provider] for provider in selections}

    def remove_model_selection(self, provider: str, *, actor: str | None = None,
                               expect: str | None = UNSET,
                               reason: str | None = None) -> Selection | None:
        """Remove the provider's selection; returns what it was (None if there was none).

        Removing a provider that has no selection is not an error: the state is as asked.
        """
        with self.transaction(actor=actor, reason=reason) as tx:
            tx.remove_model_selection(provider, expect=expect)
        return tx.before.get(provider)

    def lock(self, provider: str, *, reason: str | None = None,
             actor: str | None = None) -> Selection:
        """Lock the provider's selection (``editable`` false) so nobody changes it."""
        with self.transaction(actor=actor) as tx:
            tx.lock(provider, reason=reason)
        return tx.after[provider]

    def unlock(self, provider: str, *, actor: str | None = None,
               reason: str | None = None) -> Selection:
        with self.transaction(actor=actor, reason=reason) as tx:
            tx.unlock(provider)
        return tx.after[provider]

    @contextlib.contextmanager
    def transaction(self, *, actor: str | None = None,
                    reason: str | None = None) -> Iterator[Transaction]:
        """Collect changes and write them as one; an exception inside writes nothing.

        ``reason`` (why) is recorded on each history line of the write.
        """
        if self.read_only:
            raise ReadOnlyError(f"{self.location}: opened read-only; nothing was written")
        tx = Transaction(self, _clean_text(actor) or self.actor, _clean_text(reason))
        yield tx
        self._commit(tx)

    def _commit(self, tx: Transaction) -> None:
        """Write ``tx``; record on it the state it applied to and the state it left."""
        operations = tx.operations
        if not operations:
            return
        with self._state_lock:
            base_state = self._state
            base = self._stored  # writes build on what is stored, not on what is served
            seen: list[Mapping[str, Selection]] = []

            def apply(current: Mapping[str, Selection]) -> Commit | None:
                seen.append(current)
                outcome = rules.apply(operations, base, current, self.catalog, tx._actor,
                                      utc_now())
                outcome.raise_refusal()
                if not outcome.changed:
                    return None
                history = outcome.history
                if tx._reason is not None:
                    history = tuple(replace(entry, reason=tx._reason) for entry in history)
                return Commit(outcome.selections, history)

            try:
                stored = self._backend.commit(apply, base=base_state)
            except ConflictError:
                # Show the writer what it conflicted with, so that a deliberate retry
                # (or an editor showing theirs vs mine) works from the latest state.
                self._refresh()
                raise
            if stored is not None:
                self._install(stored, "local")
            tx._before = seen[-1] if seen else base
            tx._after = stored.selections if stored is not None else tx._before

    # -- subscribing --------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` after every change; returns a function that unsubscribes.

        Callbacks run in one dispatcher thread, in order, never on the reading path; one
        that raises is logged and the others still run.
        """
        with self._watch_lock:
            self._subscribers = (*self._subscribers, callback)
            self._start_dispatcher()

        def unsubscribe() -> None:
            with self._watch_lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def _start_dispatcher(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(target=self._dispatch, daemon=True,
                                                name="modelboard-dispatch")
            self._dispatcher.start()

    def _publish(self, event: ChangeEvent) -> None:
        if self._subscribers:
            self._events.put(event)

    def _dispatch(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            for callback in self._subscribers:
                try:
                    callback(event)
                except Exception:
                    log.exception("a modelboard subscriber raised; the others still run")

    # -- watching ------------------------------------------------------------------------------
    def start_watching(self, *, wait: bool = True) -> SelectionStore:
        """Reload in a background (daemon) thread whenever the stored state changes.

        Calls nest: each needs a matching ``stop_watching``. With ``wait`` (default) this
        returns once the watch is armed and the store has caught up with the stored
        state, so a change made after it returns is never missed.
        """
        with self._watch_lock:
            self._watch_users += 1
            if self._watch_thread is None:
                self._watch_stop, self._watch_ready = threading.Event(), threading.Event()
                self._watch_thread = threading.Thread(
                    target=self._follow_backend, args=(self._watch_stop, self._watch_ready),
                    name="modelboard-watch", daemon=True)
                self._watch_thread.start()
            ready = self._watch_ready
        if wait and not ready.wait(timeout=WATCH_START_TIMEOUT_S):
            log.warning("%s: the watch is not armed after %.0f s; going on without waiting",
                        self.location, WATCH_START_TIMEOUT_S)
        if self._reporter is not None:
            self._reporter.start()
        return self

    def stop_watching(self) -> None:
        """Undo one ``start_watching``; the last one stops the thread and waits for it."""
        with self._watch_lock:
            if self._watch_users == 0:
                return
            self._watch_users -= 1
            if self._watch_users > 0 or self._watch_thread is None:
                return
            thread, self._watch_thread = self._watch_thread, None
            self._watch_stop.set()
        if self._reporter is not None:
            self._reporter.poke()  # no longer watching: the fleet should know
        if thread is not threading.current_thread():  # a subscriber may stop it from inside
            thread.join(timeout=WATCH_START_TIMEOUT_S)

    @property
    def watching(self) -> bool:
        """True while a watch is armed and following the stored state."""
        return self._watch_thread is not None and self._watch_ready.is_set()

    def __enter__(self) -> SelectionStore:
        return self.start_watching()

    def __exit__(self, *_exc: object) -> None:
        self.stop_watching()

    def _follow_backend(self, stop: threading.Event, ready: threading.Event) -> None:
        """The watch thread: reload on every sign of change; outlive a failing watcher."""
        armed = threading.Event()
        failures = 0
        while not stop.is_set():
            signs = self._backend.follow(stop, armed)
            began = time.monotonic()
            try:
                for _ in signs:
                    if stop.is_set():
                        return
                    self._refresh()
                    if armed.is_set():
                        ready.set()
            except Exception as exc:
                # A watch that worked for a minute starts a new streak of failures.
                failures = 1 if time.monotonic() - began > 60 else failures + 1
                if failures == 1:
                    log.exception("%s: the watcher failed; retrying", self.location)
                else:
                    log.debug("%s: the watcher failed again: %s", self.location, exc)
            finally:
                close = getattr(signs, "close", None)
                if close is not None:
                    close()  # now, not at garbage collection: the watch holds a thread and a file
            ready.set()  # never keep start_watching waiting on a watch that cannot start
            # Back off, so a watcher that fails at once cannot spin (10 ms doubling to 5 s).
            stop.wait(min(0.01 * 2 ** failures, 5.0))

    async def changes(self) -> AsyncIterator[ChangeEvent]:
        """``async for event in store.changes():`` watches while the loop iterates.

        The watch starts with the iteration and stops when the generator is closed: when
        the task running it is cancelled, or on leaving ``async with
        contextlib.aclosing(store.changes())`` (after a plain ``break``, only once the
        generator is garbage-collected).
        """
        import asyncio  # here, not at the top: only async callers need it, and it is slow

        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[ChangeEvent] = asyncio.Queue()

        def forward(event: ChangeEvent) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(inbox.put_nowait, event)

        unsubscribe = self.subscribe(forward)
        # Not waiting for the watch to be armed: starting the thread takes no time, and
        # no await between here and the finally below can leave the watch running.
        self.start_watching(wait=False)
        try:
            while True:
                yield await inbox.get()
        finally:
            unsubscribe()
            self.stop_watching()  # the thread notices within one watch step

    def close(self) -> None:
        """Stop watching and dispatching; the store still answers reads."""
        with self._watch_lock:
            self._watch_users = min(self._watch_users, 1)
        self.stop_watching()
        with self._watch_lock:
            dispatcher, self._dispatcher = self._dispatcher, None
            self._subscribers = ()
        if self._reporter is not None:
            self._reporter.stop()
        if dispatcher is not None:
            self._events.put(None)
            if dispatcher is not threading.current_thread():  # a subscriber may close it
                dispatcher.join(timeout=10)
        self._backend.close()

    def readers(self) -> list[fleet.Reader]:
        """Every reader process of this store with its status (see core/fleet.py)."""
        if self._fleet is None:
            self._fleet = fleet.Fleet(self)
        return self._fleet.readers()

    def __repr__(self) -> str:
        return (f"SelectionStore({self.location!r}, revision={self._snapshot.revision!r}, "
                f"providers={len(self._stored)})")

    # -- checking -----------------------------------------------------------------------------
    def check(self, operations: Sequence[Operation], *,
              actor: str | None = None) -> rules.Outcome:
        """What ``operations`` would do to the state this store holds, writing nothing.

        Every refusal is reported, not just the first (a write raises the first). The
        same rules as a write; only the state may have moved by the time one is made.
        """
        snapshot = self._stored  # the rules judge what is stored, like a write
        return rules.apply(operations, snapshot, snapshot, self.catalog,
                           _clean_text(actor) or self.actor, utc_now())

    def validate(self) -> list[ModelboardError]:
        """Everything wrong with what is stored now, strict about the catalog too."""
        try:
            state = self._backend.load()
        except ConfigurationError as error:
            return [error]
        return [ConfigurationError(problem, path=self.location)
                for problem in self.catalog.problems(state.selections)]


def _problem_key(problem: EntryProblem) -> tuple[str, str | None, str, str | None]:
    """What makes a problem distinct: logged once per key, not on every reload."""
    return (problem.provider, problem.stored.model_name if problem.stored else None,
            problem.kind, problem.served.model_name if problem.served else None)


#: Every open store, so that a forked child re-arms each one (weakly: closing is not needed).
_STORES: weakref.WeakSet[SelectionStore] = weakref.WeakSet()


def _rearm_after_fork() -> None:
    for store in list(_STORES):
        try:
            store._after_fork_in_child()
        except Exception:  # one store failing must not break the child or the others
            log.exception("%s: could not re-arm after fork", store.location)


os.register_at_fork(after_in_child=_rearm_after_fork)

