"""Helpers for the editor's tests: fixed clock, screen text, waiting, the cursor, hand edits
and writes from other processes (one home, shared by every test module of the editor)."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
#: "Now" for every test: the fixture file's times are minutes to days before it.
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return NOW


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


def stored(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


async def wait_for(pilot: Any, condition: Callable[[], object], *, timeout: float = 5.0,
                   what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.02)


def write_from_another_process(path: Path, code: str) -> None:
    """Run ``code`` with ``store`` open on ``path`` in a separate interpreter."""
    script = ("from modelboard.core import open_store\n"
              f"store = open_store({str(path)!r}, actor='mallory@elsewhere')\n" + code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


async def write_from_another_process_async(path: Path, code: str) -> None:
    await asyncio.to_thread(write_from_another_process, path, code)


async def footer_text(pilot: Any, app: Any) -> str:
    """The footer line, once Textual has drawn it (it is rebuilt after the bindings
    change, a moment after the key that changed them)."""
    await pilot.pause()
    await wait_for(pilot, lambda: "Help" in screen_lines(app)[-1], what="the footer")
    return screen_lines(app)[-1]


def put_cursor_on(app: Any, provider: str) -> None:
    """Move the main table's cursor to ``provider``'s row."""
    table = app.main.table
    table.move_cursor(row=table.get_row_index(provider))


def replace_file(path: Path, document: dict[str, object]) -> None:
    """A hand edit saved whole, as an editor with backups or a deploy script saves it
    (no history line)."""
    temp = path.with_name(".hand-edit.json")
    temp.write_text(json.dumps(document, indent=2))
    os.replace(temp, path)


def history_path(path: Path) -> Path:
    return path.with_name("model_selections.history.jsonl")


def history_lines(path: Path) -> list[dict[str, object]]:
    """The history file beside ``path``, one record per line (none if there is no file)."""
    history = history_path(path)
    if not history.exists():
        return []
    return [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
