"""Revisions and the audit log: ``log``, ``show``, ``diff``, ``rollback`` and ``audit verify``."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigurationError
from ..fileformat import render_document
from ..models import NOTHING, ProviderChange, Selection, diff_snapshots
from ..text import escape, fit
from .fleet import finish_write, wait_if_asked
from .output import table, time_text
from .session import EXIT_OK, EXIT_REFUSED, Session
from .shapes import Problem, change_json, revision_json, selection_json

__all__ = ["cmd_audit", "cmd_diff", "cmd_log", "cmd_rollback", "cmd_show"]


def cmd_log(session: Session) -> int:
    store = session.open_for_reading()
    args = session.args
    revisions = store.revisions(provider=args.provider, limit=args.limit)
    terminal = session.terminal
    if session.as_json:
        session.print_json([revision_json(r) for r in revisions])
        return EXIT_OK
    if not revisions:
        terminal.note(f"{store.location}: no revisions"
                      + (f" touching {args.provider}" if args.provider else ""))
        return EXIT_OK
    rows = [(str(r.number) if r.number is not None else "-", time_text(r.time), r.actor,
             r.summary_and_reason()) for r in revisions]
    for line in table(terminal, ("REV", "TIME (UTC)", "BY", "CHANGE (REASON)"), rows,
                      shrink=((3, 30), (2, 10))):
        terminal.line(line)
    return EXIT_OK


def cmd_show(session: Session) -> int:
    store = session.open_for_reading()
    document = store.document_at(session.args.rev)
    if session.as_json:
        session.print_json({"rev": session.args.rev,
                            "selections": [selection_json(provider, document[provider])
                                           for provider in sorted(document)]})
        return EXIT_OK
    # The document as the file held it: the same form, byte for byte, on every backend.
    session.terminal.out.write(clean_document(render_document(document)))
    return EXIT_OK


def clean_document(rendered: bytes) -> str:
    """The rendered document as text whose lines are safe to print (JSON escapes kept)."""
    return "".join(escape(line) + "\n" for line in rendered.decode("utf-8").splitlines())


def _state(selection: Selection | None) -> str:
    if selection is None:
        return NOTHING
    return selection.model_name + (" (locked)" if selection.locked else "")


def _change_text(change: ProviderChange) -> str:
    provider = fit(escape(change.provider), 18)
    if change.kind == "added":
        return f"{provider}: {NOTHING} -> {fit(escape(_state(change.new)), 30)}"
    if change.kind == "removed":
        return f"{provider}: {fit(escape(_state(change.old)), 30)} -> {NOTHING}"
    return (f"{provider}: {fit(escape(_state(change.old)), 27)} -> "
            f"{fit(escape(_state(change.new)), 27)}")


def _print_changes(session: Session, changes: tuple[ProviderChange, ...], *,
                   same: str) -> None:
    if not changes:
        session.terminal.line(same)
    for change in changes:
        session.terminal.line(_change_text(change))


def cmd_diff(session: Session) -> int:
    store = session.open_for_reading()
    args = session.args
    old = store.document_at(args.rev)
    new: Mapping[str, Selection]
    if args.rev2 is None:
        new, other = store.stored_snapshot, "now"
    else:
        new, other = store.document_at(args.rev2), f"revision {args.rev2}"
    changes = diff_snapshots(old, new)
    if session.as_json:
        session.print_json([change_json(change) for change in changes])
        return EXIT_OK
    _print_changes(session, changes, same=f"revision {args.rev} and {other} are the same")
    return EXIT_OK


def cmd_rollback(session: Session) -> int:
    store = session.open_for_writing()
    args = session.args
    done = store.rollback(args.rev, reason=args.reason, include_locked=args.include_locked)
    terminal = session.terminal
    if session.as_json:
        return finish_write(session, store, {
            "rolled_back_to": done.target, "rev": done.number,
            "changes": [change_json(change) for change in done.changes],
            "kept_locked": list(done.kept_locked)})
    if done.number is None:
        terminal.line(f"nothing to change: already as revision {done.target}"
                      + (" (but for locked providers)" if done.kept_locked else ""))
    else:
        terminal.line(f"rolled back to revision {done.target} as revision {done.number}:")
        _print_changes(session, done.changes, same="")
    if done.kept_locked:
        names = ", ".join(escape(name) for name in done.kept_locked)
        terminal.line(f"kept as they are (locked): {names}; unlock them first, or pass "
                      "--include-locked")
    return wait_if_asked(session, store)


def cmd_audit(session: Session) -> int:
    store = session.open_for_reading()
    result = store.verify_history()
    if result is None:
        raise ConfigurationError("audit verify checks the history of a file or Redis store; "
                                 "this store keeps no hash chain", path=store.location)
    terminal = session.terminal
    if session.as_json:
        # A broken link is a problem at a line of a history file, like a file's problems.
        problems = [] if result.where is None else [Problem(
            result.where[0], result.problem or "broken", result.where[1]).to_json()]
        session.print_json({"ok": result.ok, "revisions": result.revisions,
                            "lines": result.lines, "files": result.segments,
                            "problems": problems, "notes": list(result.notes)})
        return EXIT_OK if result.ok else EXIT_REFUSED
    for note in result.notes:
        terminal.note(f"{store.location}: {note}")
    if not result.ok:
        assert result.where is not None
        segment, line = result.where
        terminal.error(f"{store.location}: history broken at {segment} line {line}: "
                       f"{result.problem}")
        return EXIT_REFUSED
    files = f"{result.segments} file{'s' if result.segments != 1 else ''}"
    terminal.line(f"{result.revisions} revisions verified ({result.lines} lines in {files}): "
                  "the chain is whole")
    return EXIT_OK
