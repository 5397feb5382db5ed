"""The ``modelboard`` command: every operation on the selections, scriptable.

Headless commands import the core only (never textual or rich), so that a deploy
pipeline or a monitoring agent starts as fast as ``import modelboard.core``; the
editor (``modelboard`` alone, or ``modelboard tui``) is imported only when asked for.

Exit codes: 0 success, 1 refused (invalid, locked, conflict, not found, bad file),
2 usage error. Every error is one line on stderr; text output fits 80 columns and
is coloured only on a terminal without ``NO_COLOR``. Under ``--json`` (every command but
the editor, ``serve`` and ``completion``) the outcome is one JSON document on stdout, a
refusal too (``{"error": ...}``), with sorted keys and the shapes of ``schema.json``.

The modules: ``parser`` (the grammar), ``session`` (one run: options, store, exit
codes), ``output`` (terminal-safe text, tables, JSON), ``shapes`` (what ``--json`` prints),
``problems`` (how apply and validate report a file's problems), and one module per group of
commands: ``reading``, ``writing``, ``files`` (apply, validate, migrate), ``watch``,
``fleet`` (the fleet and ``--wait``), ``notify`` (webhooks) and ``launch`` (the editor).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence

from ..errors import ConflictError, LockedError, ModelboardError, NotFoundError
from .completion import cmd_completion
from .files import cmd_apply, cmd_migrate, cmd_validate
from .fleet import cmd_fleet
from .launch import cmd_serve, cmd_tui
from .notify import cmd_notify
from .output import Terminal, shown
from .parser import build_parser
from .reading import cmd_catalog, cmd_get, cmd_history, cmd_list
from .recovery import cmd_init, cmd_restore
from .session import (
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    Handler,
    Session,
    cli_logging,
    with_preferences,
)
from .shapes import error_kind
from .versions import cmd_audit, cmd_diff, cmd_log, cmd_rollback, cmd_show
from .watch import cmd_watch
from .writing import cmd_lock, cmd_remove, cmd_set, cmd_unlock

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str | None, Handler] = {
    None: cmd_tui,
    "tui": cmd_tui,
    "list": cmd_list,
    "get": cmd_get,
    "set": cmd_set,
    "lock": cmd_lock,
    "unlock": cmd_unlock,
    "remove": cmd_remove,
    "apply": cmd_apply,
    "validate": cmd_validate,
    "history": cmd_history,
    "watch": cmd_watch,
    "catalog": cmd_catalog,
    "migrate": cmd_migrate,
    "fleet": cmd_fleet,
    "restore": cmd_restore,
    "init": cmd_init,
    "serve": cmd_serve,
    "completion": cmd_completion,
    "log": cmd_log,
    "show": cmd_show,
    "diff": cmd_diff,
    "rollback": cmd_rollback,
    "audit": cmd_audit,
    "notify": cmd_notify,
}


def _error_text(error: ModelboardError, session: Session) -> str:
    if isinstance(error, LockedError | ConflictError | NotFoundError):
        return f"{shown(session.location)}: {error}"  # say which store refused
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``modelboard`` with ``argv`` (default: the command line); return the exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    # Known before parsing, so that a usage error is JSON too (``--`` ends the options).
    wants_json = "--json" in words[:words.index("--")] if "--" in words else "--json" in words
    parser = build_parser(json_errors=wants_json)
    args = parser.parse_args(words)
    if args.actor is not None and (not args.actor.strip() or not args.actor.isprintable()):
        parser.error("--actor must be a non-empty name without control characters")
    if args.quiet and args.verbose:
        parser.error("-q and -v cannot be used together")
    for stream in (sys.stdout, sys.stderr):
        # A terminal whose encoding cannot show a name (LC_ALL=en_US.ISO-8859-1 and a
        # Chinese model name) gets it escaped, never a UnicodeEncodeError.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    terminal = Terminal(sys.stdout, sys.stderr, quiet=bool(args.quiet))
    try:
        preferences = with_preferences(args)
    except ModelboardError as error:
        return Session(args, terminal).refuse(str(error), kind=error_kind(error))
    session = Session(args, terminal, preferences)
    try:
        with cli_logging(quiet=args.quiet, verbose=args.verbose):
            return COMMANDS[args.command](session)
    except ModelboardError as error:
        return session.refuse(_error_text(error, session), kind=error_kind(error))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_REFUSED
