"""Commands that change one provider: ``set``, ``lock``, ``unlock`` and ``remove``."""

from __future__ import annotations

from ..errors import ConflictError, NotFoundError, describe_lock
from ..rules import UNSET
from ..text import escape
from .fleet import wait_if_asked
from .output import change_line
from .session import EXIT_REFUSED, Session

__all__ = ["cmd_lock", "cmd_remove", "cmd_set", "cmd_unlock"]


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
        session.terminal.error(
            f"{store.location}: {args.provider}: conflict: it is {current}{by}, "
            f"expected {wanted}; {args.model!r} was not applied")
        return EXIT_REFUSED
    if before is not None and before.model_name == after.model_name:
        session.terminal.line(f"{escape(args.provider)}: already {escape(after.model_name)}")
    else:
        session.terminal.line(change_line(args.provider, before.model_name if before else None,
                                           after.model_name))
    return wait_if_asked(session, store)


def cmd_lock(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    after = store.lock(args.provider, reason=args.reason)
    if before == after:  # nothing changed: say who holds the lock, and why
        story = describe_lock(after.updated_by, after.lock_reason)
        session.terminal.line(f"{escape(args.provider)}: already {story}")
        return wait_if_asked(session, store)
    reason = f" ({after.lock_reason})" if after.lock_reason else ""
    session.terminal.line(escape(f"{args.provider}: {after.model_name} locked{reason}"))
    return wait_if_asked(session, store)


def cmd_unlock(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    after = store.unlock(args.provider, reason=args.reason)
    state = "already unlocked" if before == after else "unlocked"
    session.terminal.line(escape(f"{args.provider}: {after.model_name} {state}"))
    return wait_if_asked(session, store)


def cmd_remove(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    removed = store.remove_model_selection(args.provider, reason=args.reason)
    if removed is None:
        raise NotFoundError(args.provider)
    session.terminal.line(escape(f"{args.provider}: {removed.model_name} removed"))
    return wait_if_asked(session, store)
