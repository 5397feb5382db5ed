"""``modelboard`` alone or ``modelboard tui``: open the editor, if it is installed;
``modelboard serve``: the same editor in a web browser."""

from __future__ import annotations

import os

from .. import logs
from ..extras import install_hint
from .output import REMOTE_SCHEMES
from .session import EXIT_USAGE, Session

__all__ = ["cmd_serve", "cmd_tui"]


def cmd_tui(session: Session) -> int:
    # Imported here, not at the top: headless commands must not pay for the editor. This
    # is the one import of modelboard.tui in the core (the layer contract allows it). The
    # editor package itself says when Textual is missing (run_editor exits 2).
    try:
        from modelboard.tui import run_editor
    except ImportError as exc:  # the package, or its run_editor, is missing
        if exc.name == "modelboard.tui":
            session.terminal.error(f"the editor is not installed: {install_hint('tui')}")
            return EXIT_USAGE
        raise
    logs.start()  # the editor logs through logging itself: the run's handler is set up now
    code = run_editor(session.location, catalog=session.args.catalog,
                      read_only=session.args.read_only, actor=session.args.actor,
                      preferences=session.preferences)
    return int(code or 0)


def cmd_serve(session: Session) -> int:
    args = session.args
    try:
        import textual_serve  # noqa: F401

        from modelboard.tui import serve
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("textual", "rich", "textual_serve",
                                                   "aiohttp", "aiohttp_jinja2", "jinja2"):
            session.terminal.error(f"serve needs textual-serve: {install_hint('serve')}")
            return EXIT_USAGE
        raise
    logs.start()  # as for the editor
    problem = serve.host_problem(args.host, allow_remote=args.allow_remote)
    if problem is not None:
        session.terminal.error(f"serve: {problem}")
        return EXIT_USAGE
    location = session.location
    if not location.startswith(REMOTE_SCHEMES):
        location = os.path.abspath(location)  # said in full on the page and in the log
    catalog = args.catalog if args.catalog is None else os.path.abspath(args.catalog)
    return int(serve.run(location, host=args.host, port=args.port,
                         public_url=args.public_url, catalog=catalog,
                         read_only=args.read_only, actor=args.actor))
