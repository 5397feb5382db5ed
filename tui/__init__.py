"""modelboard's terminal editor (Textual): see and change every provider's model, live.

``run_editor`` is what the ``modelboard`` command calls; ``ModelboardApp`` is the
application itself, for embedding or testing. Textual is imported only when one of
them is used, so a missing ``tui`` extra is reported as a one-line message (exit 2).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from modelboard.core.extras import install_hint

if TYPE_CHECKING:
    from modelboard.core.preferences import Preferences

    from .app import ModelboardApp

__all__ = ["ModelboardApp", "run_editor"]

NO_TERMINAL = ("modelboard: the editor needs a terminal on stdin and stdout; for text, use "
               "'modelboard list'; over ssh, 'ssh -t'")
_MISSING = "modelboard: the editor needs Textual: {hint}"


def run_editor(location: str | None, *, catalog: str | None = None,
               read_only: bool = False, actor: str | None = None,
               preferences: Preferences | None = None) -> int:
    """Open the editor on ``location`` (a file path or URL; the default file when None).

    ``catalog`` is a catalog file; ``read_only`` shows everything and changes nothing.
    If the user cannot write the file, it opens read-only by itself and says why.
    Returns the process exit code.
    """
    try:
        from .app import run_editor as run
    except ModuleNotFoundError as error:
        # The one check for a missing ``tui`` extra: a usage problem (exit 2), said on
        # one line with the command that fixes it. Any other import error is a bug.
        if not error.name or error.name.split(".")[0] not in ("textual", "rich"):
            raise
        print(_MISSING.format(hint=install_hint("tui")), file=sys.stderr)
        return 2
    # Without a terminal the editor would write escape codes into a file or a pipe and
    # wait for keys forever (``modelboard > out``, ``ssh host modelboard`` without -t):
    # refuse at once, before anything is opened.
    # A driver named by the environment (textual-serve's web driver) talks over the
    # pipes on purpose: that is a terminal of its own.
    if not os.environ.get("TEXTUAL_DRIVER") and not (sys.stdin.isatty()
                                                     and sys.stdout.isatty()):
        print(NO_TERMINAL, file=sys.stderr)
        return 2
    return run(location, catalog=catalog, read_only=read_only, actor=actor,
               preferences=preferences)


def __getattr__(name: str) -> Any:
    if name == "ModelboardApp":
        from .app import ModelboardApp

        return ModelboardApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
