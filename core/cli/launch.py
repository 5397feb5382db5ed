"""``modelboard`` alone or ``modelboard tui``: open the editor, if it is installed."""

from __future__ import annotations

from .session import EXIT_USAGE, Session

__all__ = ["cmd_tui"]

TUI_HINT = "pip install 'modelboard[tui]'"


def cmd_tui(session: Session) -> int:
    # Imported here, not at the top: headless commands must not pay for the editor. This
    # is the one import of modelboard.tui in the core (the layer contract allows it). The
    # editor package itself says when Textual is missing (run_editor exits 2).
    try:
        from modelboard.tui import run_editor
    except ImportError as exc:  # the package, or its run_editor, is missing
        if exc.name == "modelboard.tui":
            session.terminal.error(f"the editor is not installed: {TUI_HINT}")
            return EXIT_USAGE
        raise
    code = run_editor(session.location, catalog=session.args.catalog,
                      read_only=session.args.read_only)
    return int(code or 0)
