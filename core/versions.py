"""Revisions of a store: the log, the document as of any revision, and rollback in one write.

Every write is a numbered revision (see core/history.py for how the number is kept on the
file, and the Redis counter for Redis). The document of an older revision is rebuilt from
the current one by undoing, newest first, what each later revision changed (each history
line records its provider's whole entry before and after); the result is checked against
the content hash that revision recorded, so what ``show`` prints is exactly what was stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import history
from .backend import Backend
from .errors import ConfigurationError, ConflictError
from .history import Revision, group_revisions
from .models import HistoryEntry, ProviderChange, Selection, Snapshot, diff_snapshots

if TYPE_CHECKING:
    from .store import SelectionStore

__all__ = [
    "Rollback",
    "RollbackPlan",
    "diff_documents",
    "document_at",
    "plan_rollback",
    "revisions",
    "revisions_after",
    "rollback",
]


def _entries(backend: Backend) -> Iterator[HistoryEntry]:
    """The backend's history, newest first, read lazily when the backend can."""
    lazy = getattr(backend, "iter_history", None)
    if lazy is not None:
        entries: Iterator[HistoryEntry] = lazy()
        return entries
    return iter(backend.read_history())


def revisions(backend: Backend, *, provider: str | None = None,
              limit: int | None = None) -> list[Revision]:
    """Whole writes, newest first; with ``provider``, only those that touched it."""
    found: list[Revision] = []
    for revision in group_revisions(_entries(backend)):
        if provider is not None and all(e.provider != provider for e in revision.entries):
            continue
        found.append(revision)
        if limit is not None and len(found) >= limit:
            break
    return found


def revisions_after(backend: Backend, number: int) -> tuple[list[Revision], int | None]:
    """The numbered revisions after ``number``, oldest first, and the number of the one
    before the first of them (None when the history holds none before it).

    Read from the end of the history, so the cost is that of what is newer than
    ``number``, however long the history is.
    """
    newer: list[Revision] = []
    before: int | None = None
    for revision in group_revisions(_entries(backend)):
        if revision.number is None:
            continue
        if revision.number <= number:
            before = revision.number
            break
        newer.append(revision)
    newer.reverse()
    return newer, before


def document_at(backend: Backend, number: int) -> dict[str, Selection]:
    """The whole document as of revision ``number``; ConfigurationError (one line) if unknown."""
    current = backend.load()
    newest_first: list[Revision] = []
    for revision in group_revisions(_entries(backend)):
        newest_first.append(revision)
        if revision.number is not None and revision.number <= number:
            break
    if not newest_first:
        raise ConfigurationError("the history is empty: there are no revisions",
                                 path=backend.location)
    try:
        return history.document_at(number, current.selections, current.revision, newest_first,
                                   revision_of=getattr(backend, "revision_of", None))
    except ConfigurationError as exc:
        raise ConfigurationError(exc.reason, path=backend.location) from None


def diff_documents(old: Mapping[str, Selection],
                   new: Mapping[str, Selection]) -> tuple[ProviderChange, ...]:
    """What changed from ``old`` to ``new``, provider by provider."""
    return diff_snapshots(old, new)


@dataclass(frozen=True, slots=True)
class Rollback:
    """What a rollback did: the revision it went back to, the one it wrote, and what it kept."""

    target: int
    #: The number of the revision the rollback wrote; None when there was nothing to change.
    number: int | None
    changes: tuple[ProviderChange, ...]
    #: Locked providers left as they are (pass include_locked to roll them back too).
    kept_locked: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback to ``target`` would write, worked out on the document ``base``.

    ``changes`` go from each provider's entry in ``base`` (``old``) to its entry as of
    ``target`` (``new``: model, lock and lock reason; the rollback stamps its own time
    and author). ``kept_locked`` are locked providers it would leave as they are.
    """

    target: int
    base: Snapshot
    changes: tuple[ProviderChange, ...]
    kept_locked: tuple[str, ...]

    def same_as(self, other: RollbackPlan) -> bool:
        """Whether ``other`` writes the same and keeps the same (locks worded alike)."""
        def key(plan: RollbackPlan) -> object:
            return (plan.target, [(c.provider, c.old, c.new) for c in plan.changes],
                    [(p, plan.base.get(p)) for p in plan.kept_locked])
        return key(self) == key(other)

    def providers(self) -> list[str]:
        """Every provider the plan names: those it changes and those it keeps."""
        return [c.provider for c in self.changes] + list(self.kept_locked)


def plan_rollback(number: int, current: Snapshot, target: Mapping[str, Selection], *,
                  include_locked: bool) -> RollbackPlan:
    """What making ``current`` equal to ``target`` (revision ``number``) changes: a pure rule."""
    changed: list[ProviderChange] = []
    kept: list[str] = []
    for provider in sorted(set(current) | set(target)):
        now, then = current.get(provider), target.get(provider)
        if _same(now, then):
            continue
        if now is not None and now.locked and not include_locked:
            kept.append(provider)
            continue
        before = {provider: now} if now is not None else {}
        after = {provider: then} if then is not None else {}
        changed.extend(diff_snapshots(before, after))
    return RollbackPlan(number, current, tuple(changed), tuple(kept))


def rollback(store: SelectionStore, number: int, *, reason: str | None, include_locked: bool,
             actor: str | None, planned: RollbackPlan | None = None) -> Rollback:
    """Make the document equal to revision ``number`` in one write (see SelectionStore).

    With ``planned`` (what an operator confirmed), the store is read again first and a
    rollback that would now write or keep anything else is refused with ConflictError,
    naming a provider that changed meanwhile: nothing is written, the caller asks again.
    """
    target = store.document_at(number)
    if planned is not None:
        store.reload()
    # Planned on what this store shows (what an operator confirmed), so a change made by
    # someone else since is a conflict, as for any write.
    current = store.stored_snapshot
    plan = plan_rollback(number, current, target, include_locked=include_locked)
    if planned is not None and not plan.same_as(planned):
        raise _changed_since(planned, plan)
    why = f"rollback to {number}" + (f": {reason}" if reason else "")
    with store.transaction(actor=actor, reason=why) as tx:
        for change in plan.changes:
            provider, now, then = change.provider, change.old, change.new
            if now is not None and now.locked:
                tx.unlock(provider)
            if then is None:
                tx.remove_model_selection(provider)
                continue
            if now is None or now.model_name != then.model_name:
                tx.set_model_selection(provider, then.model_name)
            if then.locked:
                tx.lock(provider, reason=then.lock_reason)
    after = store.stored_snapshot
    changes = diff_snapshots(current, after) if after.revision != current.revision else ()
    written = store.revisions(limit=1)[0].number if changes else None
    return Rollback(number, written, changes, plan.kept_locked)


def _changed_since(planned: RollbackPlan, plan: RollbackPlan) -> ConflictError:
    """The conflict to report when the store moved under a confirmed rollback."""
    now = plan.base
    names = sorted(set(planned.providers()) | set(plan.providers()))
    provider = next((p for p in names if planned.base.get(p) != now.get(p)), names[0]
                    if names else "*")
    theirs = now.get(provider)
    # Mine: what the confirmed rollback would have left (the same entry, if it kept it).
    wanted = next((c.new for c in planned.changes if c.provider == provider),
                  planned.base.get(provider))
    return ConflictError(provider, theirs=theirs.model_name if theirs else None,
                         mine=wanted.model_name if wanted else None,
                         theirs_by=theirs.updated_by if theirs else None)


def _same(now: Selection | None, then: Selection | None) -> bool:
    """Equal as far as a rollback restores: the model, the lock and its reason."""
    if now is None or then is None:
        return now is then
    return (now.model_name, now.editable, now.lock_reason if now.locked else None) == \
        (then.model_name, then.editable, then.lock_reason if then.locked else None)
