"""What the command prints and how: terminal-safe text, columns, colour and stable JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from ..models import NOTHING
from ..text import cell_width, escape, fit

__all__ = ["LINE_WIDTH", "Terminal", "change_line", "shown", "table", "time_text",
           "to_json"]

LINE_WIDTH = 80
REMOTE_SCHEMES = ("redis://", "rediss://", "unix://")


def to_json(value: Any, *, lines: bool = False) -> str:
    """Stable JSON: sorted keys; indented, or one compact line with ``lines``.

    Unprintable characters are written as ``\\uXXXX`` escapes (json leaves C1 controls
    and bidi overrides raw), so ``cat``-ing the output is as safe as the text form.
    """
    if lines:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)
    if text.isprintable():
        return text
    # Only string contents can hold such characters: the structure is printable ASCII
    # plus the newlines of the indent, which json never leaves raw inside a string.
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


# -- where it goes -------------------------------------------------------------------------
class Terminal:
    """Where the command writes, and whether it may colour what it writes."""

    _STYLES = {"bold": "1", "red": "31"}

    def __init__(self, out: TextIO, err: TextIO, *, quiet: bool = False) -> None:
        self.out = out
        self.err = err
        self.quiet = quiet  # -q: notes are left out, errors are not
        self.colour = _wants_colour(out)
        self.error_colour = _wants_colour(err)

    def style(self, text: str, style: str, *, stream: TextIO | None = None) -> str:
        enabled = self.error_colour if stream is self.err else self.colour
        if not enabled or not text:
            return text
        return f"\x1b[{self._STYLES[style]}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def flush(self) -> None:
        self.out.flush()

    def error(self, message: str) -> None:
        self.err.write(f"modelboard: {self.style(escape(message), 'red', stream=self.err)}\n")

    def note(self, message: str) -> None:
        if self.quiet:
            return
        self.err.write(f"modelboard: {escape(message)}\n")


def _wants_colour(stream: TextIO) -> bool:
    """Colour on a terminal; never with a non-empty ``NO_COLOR`` (no-color.org), always
    with a non-empty ``FORCE_COLOR`` (force-color.org), in that order, as CPython does."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def table(terminal: Terminal, headers: Sequence[str], rows: Iterable[Sequence[str]],
          *, shrink: Sequence[tuple[int, int]]) -> list[str]:
    """Rows aligned in columns that fit 80.

    When a line would be wider, the columns in ``shrink`` (index, narrowest width) give
    way in that order, their cells cut with an ellipsis: the least useful ones first.
    """
    body = [[escape(cell) for cell in row] for row in rows]
    widths = [max([len(header), *(cell_width(row[i]) for row in body)])
              for i, header in enumerate(headers)]
    gap = 2
    excess = sum(widths) + gap * (len(widths) - 1) - LINE_WIDTH
    for index, narrowest in shrink:
        if excess <= 0:
            break
        given = min(excess, max(0, widths[index] - narrowest))
        widths[index] -= given
        excess -= given

    def render(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            cell = fit(cell, widths[i])
            last = i == len(cells) - 1
            parts.append(cell if last else cell + " " * (widths[i] - cell_width(cell)))
        return (" " * gap).join(parts).rstrip()

    lines = [terminal.style(render(headers), "bold")]
    lines.extend(render(row) for row in body)
    return lines


# -- pieces of lines -----------------------------------------------------------------------
def change_line(provider: str, old: str | None, new: str | None) -> str:
    """``provider: old -> new``, each part cut to fit one 80-column line."""
    return (f"{fit(escape(provider), 18)}: {fit(escape(old or NOTHING), 27)} -> "
            f"{fit(escape(new or NOTHING), 27)}")


def shown(location: str) -> str:
    """``location`` fit to print: the password of a Redis URL masked."""
    if not location.startswith(REMOTE_SCHEMES):
        return location
    # Only reached once a store on that URL was opened, so redis-py is installed.
    from ..redisbackend import mask_password  # type: ignore[import-not-found,unused-ignore]

    return str(mask_password(location))


def time_text(moment: datetime | None, *, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
