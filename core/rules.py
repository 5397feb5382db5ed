"""The rules of a change, as one pure function over plain values.

:func:`apply` decides what a list of operations does to the stored selections: whether
the writer's view is stale, whether an ``expect`` holds, whether the catalog accepts a
model, whether a lock refuses, and which history lines record the result. It reads no
file, takes no lock and asks no clock: the store calls it under the backend's writers'
lock with the latest stored state (:meth:`SelectionStore._commit`), and as a dry run
with the state it holds (:meth:`SelectionStore.check`, used by ``modelboard apply
--dry-run`` and the editor's bulk review). So the command line and the editor never
re-implement a rule, and the rules are tested without any storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal

from .catalog import Catalog
from .errors import ConflictError, LockedError, NotFoundError, ValidationError
from .models import HistoryEntry, Selection

__all__ = ["UNSET", "Operation", "OperationKind", "Outcome", "Refusal", "apply"]

OperationKind = Literal["set", "lock", "unlock", "remove"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "No expectation given", for ``expect=``; None means "expect no selection". The one
#: sentinel of the project (the store's and the editor's ``expect`` both use it).
UNSET: Final[Any] = _Unset()


@dataclass(frozen=True, slots=True)
class Operation:
    """One change a writer asks for.

    ``model`` is the model of a ``set``; ``reason`` the reason of a ``lock``; ``expect``
    the model the writer believes is stored (None: no selection), or UNSET to rely on
    what the writer last read.
    """

    action: OperationKind
    provider: str
    model: str | None = None
    reason: str | None = None
    expect: Any = UNSET

    def describe(self) -> str:
        """What the operation asks for, in a few words (``set to gpt-4o``, ``locked``)."""
        if self.action == "set":
            return f"set to {self.model}"
        if self.action == "remove":
            return "selection removed"
        if self.action == "lock":
            return "locked" + (f" ({self.reason})" if self.reason else "")
        return "unlocked"


RefusalError = ConflictError | LockedError | NotFoundError | ValidationError


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why ``operations[index]`` cannot be applied."""

    index: int
    operation: Operation
    error: RefusalError


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :func:`apply` decided.

    With no refusals, ``selections`` is the new whole state and ``history`` its lines
    (empty when nothing changes). With any refusal nothing is applied: ``selections``
    is the current state unchanged and ``history`` is empty.
    """

    selections: Mapping[str, Selection]
    history: tuple[HistoryEntry, ...]
    refusals: tuple[Refusal, ...]

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def changed(self) -> bool:
        return bool(self.history)

    def raise_refusal(self) -> None:
        """Raise the first refusal's error, if there is one (what a write does)."""
        if self.refusals:
            raise self.refusals[0].error


def _value(selection: Selection | None) -> tuple[str, bool] | None:
    """What staleness compares: the model and the lock, not the metadata."""
    return None if selection is None else (selection.model_name, selection.editable)


def _conflict(op: Operation, found: Selection | None) -> ConflictError:
    model = found.model_name if found else None
    if op.action == "set":
        mine = op.model
    elif op.action == "remove":
        mine = None
    else:
        mine = f"{model} ({op.action}ed)" if model else op.action
    return ConflictError(op.provider, theirs=model, mine=mine,
                         theirs_by=found.updated_by if found else None)


def _locked(selection: Selection, provider: str) -> LockedError:
    return LockedError(provider, locked_by=selection.updated_by, reason=selection.lock_reason)


def apply(operations: Sequence[Operation], before: Mapping[str, Selection],
          current: Mapping[str, Selection], catalog: Catalog, actor: str,
          now: datetime) -> Outcome:
    """Apply ``operations`` in order to ``current``, or report every reason they cannot be.

    ``before`` is the state the writer last read and ``current`` the latest stored one
    (the same mapping for a dry run). The rules, in the order they are checked:

    1. Staleness, for the first operation on each provider: with an ``expect``, the
       stored model must be it; without one, the stored model and lock must be what the
       writer read. A stale provider is refused with ConflictError and nothing else is
       judged for it: the other judgements would rest on an out-of-date view.
    2. A later operation on the same provider with an ``expect`` is judged against what
       the earlier ones left.
    3. ``set``: the catalog must accept the model (ValidationError); setting the model
       already selected changes nothing, locked or not; otherwise a lock refuses
       (LockedError). The new selection is unlocked, stamped with ``now`` and
       ``actor``, and keeps the fields a newer version wrote.
    4. ``remove``: nothing selected is already as asked; a lock refuses.
    5. ``lock`` / ``unlock``: a provider with no selection is NotFoundError; unlocking
       an unlocked one changes nothing. Locking a locked one keeps who locked it and
       why, unless a new reason is given: that is a change, by whoever gave it.
    6. Every change is one history line: time, actor, provider, action, old and new
       model, and the lock reason.

    Refusals are listed stale ones first, then in operation order. A refused operation
    is skipped, so the ones after it are judged as they would be without it.
    """
    refusals: list[Refusal] = []
    stale: set[str] = set()
    seen: set[str] = set()
    for index, op in enumerate(operations):
        if op.provider in seen:
            continue
        seen.add(op.provider)
        stored = current.get(op.provider)
        if op.expect is not UNSET:
            is_stale = (stored.model_name if stored else None) != op.expect
        else:
            is_stale = _value(stored) != _value(before.get(op.provider))
        if is_stale:
            stale.add(op.provider)
            refusals.append(Refusal(index, op, _conflict(op, stored)))

    working = dict(current)
    history: list[HistoryEntry] = []
    touched: set[str] = set()
    for index, op in enumerate(operations):
        provider = op.provider
        if provider in stale:
            continue
        existing = working.get(provider)
        try:
            if (provider in touched and op.expect is not UNSET
                    and (existing.model_name if existing else None) != op.expect):
                raise _conflict(op, existing)
            touched.add(provider)
            entry = _one(op, existing, catalog, actor, now, working)
        except (ConflictError, LockedError, NotFoundError, ValidationError) as error:
            refusals.append(Refusal(index, op, error))
            continue
        if entry is not None:
            history.append(entry)
    if refusals:
        return Outcome(current, (), tuple(refusals))
    return Outcome(working if history else current, tuple(history), ())


def _one(op: Operation, existing: Selection | None, catalog: Catalog, actor: str,
         now: datetime, working: dict[str, Selection]) -> HistoryEntry | None:
    """Apply one operation to ``working``; its history line, None if nothing changed."""
    provider = op.provider
    if op.action == "set":
        assert op.model is not None
        catalog.validate(provider, op.model)
        if existing is not None and existing.model_name == op.model:
            return None  # already as asked: nothing to refuse, nothing to record
        if existing is not None and not existing.editable:
            raise _locked(existing, provider)
        selection = Selection(model_name=op.model, editable=True, last_updated=now,
                              updated_by=actor)
        if existing is not None and existing.extra:
            selection = replace(selection, extra=existing.extra)
        working[provider] = selection
        return HistoryEntry(now, actor, provider, "set",
                            existing.model_name if existing else None, op.model, "")
    if op.action == "remove":
        if existing is None:
            return None  # nothing selected: already as asked
        if not existing.editable:
            raise _locked(existing, provider)
        del working[provider]
        return HistoryEntry(now, actor, provider, "remove", existing.model_name, None, "")
    if existing is None:
        raise NotFoundError(provider)
    locking = op.action == "lock"
    if not locking and existing.editable:
        return None  # already unlocked
    if locking and not existing.editable and op.reason in (None, existing.lock_reason):
        # Already locked: who locked it and why stay. Only a new reason is a change.
        return None
    working[provider] = replace(existing, editable=not locking, last_updated=now,
                                updated_by=actor, lock_reason=op.reason if locking else None)
    return HistoryEntry(now, actor, provider, op.action, existing.model_name,
                        existing.model_name, "", op.reason if locking else None)
