"""What to run to add an optional part (an extra) to the installation at hand."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["install_hint"]


def install_hint(extra: str) -> str:
    """The command that adds ``extra`` (``tui``, ``redis`` …) to this modelboard.

    pipx keeps each application in a virtualenv of its own and writes
    ``pipx_metadata.json`` at its root; ``pip install`` there would not reach it,
    so pipx users get pipx's command.
    """
    if (Path(sys.prefix) / "pipx_metadata.json").is_file():
        return f"pipx install --force 'modelboard[{extra}]'"
    return f"pip install 'modelboard[{extra}]'"
