"""Commands that change one provider: ``set``, ``lock``, ``unlock`` and ``remove``."""

from __future__ import annotations

from ..errors import ConflictError, NotFoundError, describe_lock
from ..models import Selection, diff_snapshots
from ..rules import UNSET
from ..store import SelectionStore
from ..text import escape
from .fleet import finish_write, wait_if_asked
from .output import change_line
from .session import Session
from .shapes import change_json, selection_json

__all__ = ["cmd_lock", "cmd_remove", "cmd_set", "cmd_unlock"]


def _done(session: Session, store: SelectionStore, before: Selection | None,
          after: Selection | None, text: str) -> int:
    """Say what the write did (``text``, or JSON under ``--json``), then wait if asked."""
    if not session.as_json:
        session.terminal.line(text)
        return wait_if_asked(session, store)
    provider = session.args.provider
    changes = diff_snapshots({} if before is None else {provider: before},
                             {} if after is None else {provider: after})
    return finish_write(session, store, {
        "provider": provider,
        "selection": None if after is None else selection_json(provider, after),
        "changes": [change_json(change) for change in changes]})


def cmd_set(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    expect = UNSET if args.expect is None else (args.expect or None)
    try:
        after = store.set_model_selection(args.provider, args.model, expect=expect,
                                          reason=args.reason)
    except ConflictError as conflict:
        if expect is UNSET:
            raise
        by = f" (set by {conflict.theirs_by})" if conflict.theirs_by else ""
        current = repr(conflict.theirs) if conflict.theirs is not None else "not selected"
        wanted = repr(expect) if expect is not None else "not selected"
        return session.refuse(
            f"{store.location}: {args.provider}: conflict: it is {current}{by}, "
            f"expected {wanted}; {args.model!r} was not applied", kind="conflict")
    if before is not None and before.model_name == after.model_name:
        text = f"{escape(args.provider)}: already {escape(after.model_name)}"
    else:
        text = change_line(args.provider, before.model_name if before else None,
                           after.model_name)
    return _done(session, store, before, after, text)


def cmd_lock(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    after = store.lock(args.provider, reason=args.reason)
    if before == after:  # nothing changed: say who holds the lock, and why
        story = describe_lock(after.updated_by, after.lock_reason)
        return _done(session, store, before, after, f"{escape(args.provider)}: already {story}")
    reason = f" ({after.lock_reason})" if after.lock_reason else ""
    return _done(session, store, before, after,
                 escape(f"{args.provider}: {after.model_name} locked{reason}"))


def cmd_unlock(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    after = store.unlock(args.provider, reason=args.reason)
    state = "already unlocked" if before == after else "unlocked"
    return _done(session, store, before, after,
                 escape(f"{args.provider}: {after.model_name} {state}"))


def cmd_remove(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    removed = store.remove_model_selection(args.provider, reason=args.reason)
    if removed is None:
        raise NotFoundError(args.provider)
    return _done(session, store, removed, None,
                 escape(f"{args.provider}: {removed.model_name} removed"))
