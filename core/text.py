"""Text that is safe to show on a terminal, and fitted to a width in cells.

Provider and model names are checked as they are read, but who made a change and why
a provider is locked are free text anyone who can write the file may have typed. Every
place that shows them (error messages, the command line, the editor, the stored lock
reason itself) goes through this module, so one rule decides what reaches a terminal:

- a character Python calls printable is shown as it is;
- whitespace (tabs, line breaks, other spaces) becomes one plain space, so a value
  stays on its line;
- anything else (C0 and C1 controls such as ESC, format characters such as bidi
  overrides, surrogates, unassigned code points) is either written as a visible
  escape (:func:`escape`, for messages a person must be able to report exactly) or
  dropped (:func:`strip_controls`, for display in the editor).

Widths are in terminal cells, not characters: a CJK character takes two, a combining
accent none. The core cannot use Rich (it imports neither textual nor rich), so the
width comes from :mod:`unicodedata`; it agrees with Rich on the text names are made of.
"""

from __future__ import annotations

import unicodedata

__all__ = ["cell_width", "escape", "fit", "strip_controls"]

ELLIPSIS = "…"


def escape(text: str) -> str:
    """``text`` on one line: whitespace as spaces, other unprintables as ``\\x1b`` escapes.

    ``"a\\x1b[2J\\nb"`` becomes ``"a\\\\x1b[2J b"``: the escape is visible, never interpreted.
    """
    if text.isprintable():  # the usual case, decided in C
        return text
    return "".join(ch if ch.isprintable() else " " if ch.isspace() else _escaped(ch)
                   for ch in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def strip_controls(text: str, *, replacement: str = "") -> str:
    """``text`` on one line: whitespace as spaces, other unprintables dropped (or replaced)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else " " if ch.isspace() else replacement
                   for ch in text)


def cell_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` cells, ending in an ellipsis when it was cut."""
    if cell_width(text) <= width:
        return text
    if width <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for char in text:
        size = cell_width(char)
        if used + size > width - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + ELLIPSIS
