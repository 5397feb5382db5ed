"""Commands on whole files: ``apply``, ``validate`` and ``migrate``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, ValidationError
from ..extras import install_hint
from ..fileformat import MAX_DOCUMENT_BYTES, parse_document
from ..models import ProviderChange, Selection, diff_snapshots
from ..rules import Operation
from ..safefiles import read_regular_file
from ..text import escape
from .fleet import finish_write, wait_if_asked
from .output import REMOTE_SCHEMES, change_line, shown
from .problems import Problem, in_order, report_problems
from .session import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Session
from .shapes import change_json

__all__ = ["cmd_apply", "cmd_migrate", "cmd_validate"]


def _read_source(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return read_regular_file(Path(source), MAX_DOCUMENT_BYTES)  # never a FIFO's hang
    except FileNotFoundError:
        raise ConfigurationError("no such file", path=source) from None
    except IsADirectoryError:
        raise ConfigurationError("is a folder, not a file", path=source) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror}", path=source) from None


def cmd_apply(session: Session) -> int:
    args = session.args
    terminal = session.terminal
    label = "<stdin>" if args.source == "-" else args.source
    data = _read_source(args.source)
    store = session.open_for_reading() if args.dry_run else session.open_for_writing()

    # Every problem is found and reported before anything is written, so one run shows
    # them all: the file's own, then the store's rules as a dry run, at the line and
    # column of each provider. The transaction below applies the same rules under the lock.
    errors: list[ConfigurationError] = []
    positions: dict[str, tuple[int, int]] = {}
    wanted = parse_document(data, path=label, problems=errors, positions=positions)
    operations = [Operation("set", provider, wanted[provider].model_name)
                  for provider in sorted(wanted)]
    outcome = store.check(operations)
    for refusal in outcome.refusals:
        line, column = positions[refusal.operation.provider]
        errors.append(ConfigurationError(str(refusal.error), path=label, line=line,
                                         column=column))
    result: dict[str, Any] = {"file": label, "dry_run": bool(args.dry_run), "written": False,
                              "changes": [], "unchanged": 0, "problems": [],
                              "revision": store.stored_snapshot.revision, "wait": None}
    if errors:
        result["problems"] = report_problems(session, in_order(errors, file=label))
        if session.as_json:
            session.print_json(result)
        else:
            terminal.error(f"{label}: {len(errors)} problem{'s' if len(errors) > 1 else ''}; "
                           f"nothing was written to {store.location}")
        return EXIT_REFUSED

    touched = {entry.provider for entry in outcome.history}
    before = store.stored_snapshot
    changes = _changes(before, outcome.selections, touched)
    unchanged = len(wanted) - len(touched)
    result["unchanged"] = unchanged
    if not args.dry_run and changes:
        with store.transaction(reason=args.reason) as tx:
            for provider in sorted(wanted):
                tx.set_model_selection(provider, wanted[provider].model_name)
        changes = _changes(before, store.stored_snapshot, touched)
        result.update(written=True, revision=store.stored_snapshot.revision)
    result["changes"] = [change_json(change) for change in changes]
    if session.as_json:
        if args.dry_run:
            session.print_json(result)
            return EXIT_OK
        return finish_write(session, store, result)
    for change in changes:
        terminal.line(change_line(change.provider, change.old.model_name if change.old else None,
                                  change.new.model_name if change.new else None))
    tail = f" ({unchanged} already as wanted)" if unchanged else ""
    count = f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
    if args.dry_run:
        terminal.line(f"dry run: {count} would be applied{tail}; nothing was written")
        return EXIT_OK
    terminal.line(f"applied {count} to {escape(store.location)}{tail}")
    return wait_if_asked(session, store)


def _changes(before: Mapping[str, Selection], after: Mapping[str, Selection],
             providers: set[str]) -> tuple[ProviderChange, ...]:
    return diff_snapshots({p: before[p] for p in providers if p in before},
                          {p: after[p] for p in providers if p in after})


def cmd_validate(session: Session) -> int:
    targets = session.args.files or [session.location]
    if targets.count("-") > 1:
        return session.refuse("validate: '-' (stdin) can be given once", kind="usage",
                              code=EXIT_USAGE)
    failed = 0
    files: list[dict[str, Any]] = []
    for target in targets:
        name = (session.args.stdin_name or "<stdin>") if target == "-" else target
        problems, count = _problems_in(target, session, name=name)
        files.append({"file": shown(name), "ok": not problems, "selections": count,
                      "problems": report_problems(session, problems)})
        if problems:
            failed += 1
        elif not session.as_json:
            session.terminal.line(f"{escape(shown(name))}: valid, {count} "
                                  f"selection{'s' if count != 1 else ''}")
    if session.as_json:
        session.print_json({"ok": not failed, "files": files})
    elif failed:
        session.terminal.error(f"{failed} of {len(targets)} file{'s' if len(targets) > 1 else ''}"
                               f" {'is' if failed == 1 else 'are'} not valid")
    return EXIT_REFUSED if failed else EXIT_OK


def _problems_in(target: str, session: Session, *, name: str) -> tuple[list[Problem], int]:
    """Every problem in ``target``, in the file's order, and how many selections it holds.

    ``target`` ``-`` is stdin; ``name`` is what problems are reported against (the file
    a git hook piped from the index, not a temporary copy).
    """
    if target == "-":
        return _problems_in_bytes(sys.stdin.buffer.read(), session, name=name)
    if target.startswith(REMOTE_SCHEMES):
        store = session.open(read_only=True, location=target)
        try:
            return (in_order(store.validate(), file=shown(target)),
                    len(store.stored_snapshot))
        finally:
            store.close()
    try:
        data = read_regular_file(Path(target), MAX_DOCUMENT_BYTES)
    except FileNotFoundError:
        return [Problem(target, "no such file")], 0
    except IsADirectoryError:
        return [Problem(target, "is a folder, not a file")], 0
    except OSError as exc:
        return [Problem(target, f"cannot read: {exc.strerror}")], 0
    except ConfigurationError as error:  # a FIFO, a device, a folder, over the size limit
        return [Problem.from_error(error, file=target)], 0
    return _problems_in_bytes(data, session, name=name)


def _problems_in_bytes(data: bytes, session: Session, *, name: str) -> tuple[list[Problem], int]:
    errors: list[ConfigurationError] = []
    positions: dict[str, tuple[int, int]] = {}
    try:
        selections = parse_document(data, path=name, problems=errors, positions=positions)
    except ConfigurationError as error:
        return [Problem.from_error(error, file=name)], 0
    for provider, selection in selections.items():
        try:
            session.catalog.validate(provider, selection.model_name)
        except ValidationError as exc:
            line, column = positions[provider]
            errors.append(ConfigurationError(str(exc), path=name, line=line, column=column))
    return in_order(errors, file=name), len(selections)


def cmd_migrate(session: Session) -> int:
    try:
        from .. import migrate
    except ModuleNotFoundError as exc:
        if exc.name == "modelboard.core.migrate":
            return session.refuse("migrate is not available in this version of modelboard")
        if exc.name and exc.name.split(".")[0] == "redis":
            return session.refuse(f"migrate needs redis-py: {install_hint('redis')}")
        raise
    done = migrate.copy_store(session.args.source, session.args.destination)
    if session.as_json:
        session.print_json({"from": shown(done.source), "to": shown(done.destination),
                            "selections": done.selections, "entries": done.entries,
                            "left_out": done.left_out, "revision": done.revision})
    else:
        session.terminal.line(escape(str(done)))
    return EXIT_OK
