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
from importlib import import_module

from ..errors import ConflictError, LockedError, ModelboardError, NotFoundError
from .output import Terminal, shown
from .parser import build_parser
from .session import (
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    Handler,
    Session,
    cli_logging,
    with_preferences,
)
from .shapes import error_kind

__all__ = ["COMMANDS", "build_parser", "handler", "main"]

#: command -> the module of this package that runs it and its handler, imported only for
#: that command: ``modelboard get`` loads neither the writers, the fleet nor the webhooks.
COMMANDS: dict[str | None, tuple[str, str]] = {
    None: ("launch", "cmd_tui"),
    "tui": ("launch", "cmd_tui"),
    "list": ("reading", "cmd_list"),
    "get": ("reading", "cmd_get"),
    "set": ("writing", "cmd_set"),
    "lock": ("writing", "cmd_lock"),
    "unlock": ("writing", "cmd_unlock"),
    "remove": ("writing", "cmd_remove"),
    "apply": ("files", "cmd_apply"),
    "validate": ("files", "cmd_validate"),
    "history": ("reading", "cmd_history"),
    "watch": ("watch", "cmd_watch"),
    "catalog": ("reading", "cmd_catalog"),
    "migrate": ("files", "cmd_migrate"),
    "fleet": ("fleet", "cmd_fleet"),
    "restore": ("recovery", "cmd_restore"),
    "init": ("recovery", "cmd_init"),
    "serve": ("launch", "cmd_serve"),
    "completion": ("completion", "cmd_completion"),
    "log": ("versions", "cmd_log"),
    "show": ("versions", "cmd_show"),
    "diff": ("versions", "cmd_diff"),
    "rollback": ("versions", "cmd_rollback"),
    "audit": ("versions", "cmd_audit"),
    "notify": ("notify", "cmd_notify"),
}


def handler(command: str | None) -> Handler:
    """The function that runs ``command``, its module imported now."""
    module, name = COMMANDS[command]
    found: Handler = getattr(import_module(f"{__name__}.{module}"), name)
    return found


def _error_text(error: ModelboardError, session: Session) -> str:
    if isinstance(error, LockedError | ConflictError | NotFoundError):
        return f"{shown(session.location)}: {error}"  # say which store refused
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``modelboard`` with ``argv`` (default: the command line); return the exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    # Known before parsing, so that a usage error is JSON too (``--`` ends the options).
    wants_json = "--json" in words[:words.index("--")] if "--" in words else "--json" in words
    parser = build_parser(json_errors=wants_json, lazy=True)
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
            return handler(args.command)(session)
    except ModelboardError as error:
        return session.refuse(_error_text(error, session), kind=error_kind(error))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_REFUSED
