"""Commands on whole files: ``apply``, ``validate`` and ``migrate``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigurationError, ValidationError
from ..extras import install_hint
from ..fileformat import MAX_DOCUMENT_BYTES, parse_document
from ..rules import Operation
from ..safefiles import read_regular_file
from ..text import escape
from .fleet import wait_if_asked
from .output import REMOTE_SCHEMES, change_line, shown
from .session import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Session

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
    if errors:
        errors.sort(key=lambda error: (error.line or 0, error.column or 0))
        for error in errors:
            terminal.error(str(error))
        terminal.error(f"{label}: {len(errors)} problem{'s' if len(errors) > 1 else ''}; "
                       f"nothing was written to {store.location}")
        return EXIT_REFUSED

    changes = outcome.history
    for change in changes:
        terminal.line(change_line(change.provider, change.old, change.new))
    unchanged = len(wanted) - len(changes)
    tail = f" ({unchanged} already as wanted)" if unchanged else ""
    count = f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
    if args.dry_run:
        terminal.line(f"dry run: {count} would be applied{tail}; nothing was written")
        return EXIT_OK
    if changes:
        with store.transaction(reason=args.reason) as tx:
            for provider in sorted(wanted):
                tx.set_model_selection(provider, wanted[provider].model_name)
    terminal.line(f"applied {count} to {escape(store.location)}{tail}")
    return wait_if_asked(session, store)


def cmd_validate(session: Session) -> int:
    targets = session.args.files or [session.location]
    if targets.count("-") > 1:
        session.terminal.error("validate: '-' (stdin) can be given once")
        return EXIT_USAGE
    failed = 0
    for target in targets:
        name = (session.args.stdin_name or "<stdin>") if target == "-" else target
        problems, count = _problems_in(target, session, name=name)
        for problem in problems:
            session.terminal.line(escape(problem))
        if problems:
            failed += 1
        else:
            session.terminal.line(f"{escape(shown(name))}: valid, {count} "
                                  f"selection{'s' if count != 1 else ''}")
    if failed:
        session.terminal.flush()
        session.terminal.error(f"{failed} of {len(targets)} file{'s' if len(targets) > 1 else ''}"
                               f" {'is' if failed == 1 else 'are'} not valid")
        return EXIT_REFUSED
    return EXIT_OK


def _problems_in(target: str, session: Session, *, name: str) -> tuple[list[str], int]:
    """Every problem in ``target`` as ``NAME:LINE:COL: reason``, and how many selections.

    ``target`` ``-`` is stdin; ``name`` is what problems are reported against (the file
    a git hook piped from the index, not a temporary copy).
    """
    if target == "-":
        return _problems_in_bytes(sys.stdin.buffer.read(), session, name=name)
    if target.startswith(REMOTE_SCHEMES):
        store = session.open(read_only=True, location=target)
        try:
            return [str(problem) for problem in store.validate()], len(store.stored_snapshot)
        finally:
            store.close()
    try:
        data = read_regular_file(Path(target), MAX_DOCUMENT_BYTES)
    except FileNotFoundError:
        return [f"{target}: no such file"], 0
    except IsADirectoryError:
        return [f"{target}: is a folder, not a file"], 0
    except OSError as exc:
        return [f"{target}: cannot read: {exc.strerror}"], 0
    except ConfigurationError as error:  # a FIFO, a device, a folder, over the size limit
        return [str(error)], 0
    return _problems_in_bytes(data, session, name=name)


def _problems_in_bytes(data: bytes, session: Session, *, name: str) -> tuple[list[str], int]:
    target = name
    errors: list[ConfigurationError] = []
    positions: dict[str, tuple[int, int]] = {}
    try:
        selections = parse_document(data, path=target, problems=errors, positions=positions)
    except ConfigurationError as error:
        return [str(error)], 0
    for provider, selection in selections.items():
        try:
            session.catalog.validate(provider, selection.model_name)
        except ValidationError as exc:
            line, column = positions[provider]
            errors.append(ConfigurationError(str(exc), path=target, line=line, column=column))
    errors.sort(key=lambda error: (error.line or 0, error.column or 0))
    return [str(error) for error in errors], len(selections)


def cmd_migrate(session: Session) -> int:
    try:
        from .. import migrate
    except ModuleNotFoundError as exc:
        if exc.name == "modelboard.core.migrate":
            session.terminal.error("migrate is not available in this version of modelboard")
            return EXIT_REFUSED
        if exc.name and exc.name.split(".")[0] == "redis":
            session.terminal.error(f"migrate needs redis-py: {install_hint('redis')}")
            return EXIT_REFUSED
        raise
    summary = migrate.migrate(session.args.source, session.args.destination)
    session.terminal.line(escape(str(summary)))
    return EXIT_OK
