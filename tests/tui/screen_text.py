"""The text on an app's screen, read from its public SVG export (no private Textual state)."""

from __future__ import annotations

import html
import re
from typing import Any

_TEXT = re.compile(
    r'<text [^>]*?x="([\d.]+)"[^>]*clip-path="url\(#[\w-]+-line-(\d+)\)"[^>]*>(.*?)</text>')
_CELL_WIDTH = 12.2  # Rich's SVG export: 0.61 of its 20px font per terminal cell


def screen_lines(app: Any) -> list[str]:
    """One string per terminal line, as the user would read it."""
    width, height = app.size
    rows = [[" "] * (width + 2) for _ in range(height)]
    for x, number, content in _TEXT.findall(app.export_screenshot()):
        row = rows[int(number)]
        column = round(float(x) / _CELL_WIDTH)
        for offset, char in enumerate(html.unescape(content).replace("\xa0", " ")):
            if column + offset < len(row):
                row[column + offset] = char
    return ["".join(row).rstrip() for row in rows]


def screen_text(app: Any) -> str:
    return "\n".join(screen_lines(app))
