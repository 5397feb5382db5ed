"""The table at 10,000 providers: it draws only the rows on screen, keeps the cursor in
view while scrolling, and a change elsewhere leaves the view where it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tui_helpers import screen_lines, wait_for, write_from_another_process_async

from modelboard.core import Catalog
from modelboard.tui import ModelboardApp
from modelboard.tui.table import SelectionTable

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

COUNT = 10_000
ROWS = COUNT + len(list(Catalog.default()))  # anthropic and xai are in the catalog too
SIZE = (120, 30)  # wide enough for whole provider names


@pytest.fixture
def large_file(data_file: Path) -> Path:
    """10,000 providers beside the catalog's own (anthropic sorts first, xai last)."""
    data_file.parent.mkdir(parents=True, exist_ok=True)
    document = {f"provider-{n:05d}": {"model_name": f"model-{n % 7}", "editable": True,
                                      "last_updated": "2025-01-15T11:00:00+00:00",
                                      "updated_by": "alice@ops1"} for n in range(COUNT)}
    for provider, model in (("anthropic", "claude-sonnet-4-5"), ("xai", "grok-3")):
        document[provider] = {"model_name": model, "editable": True,
                              "last_updated": "2025-01-15T10:00:00+00:00",
                              "updated_by": "carol@ops1"}
    data_file.write_text(json.dumps(document))
    return data_file


def on_screen(app: ModelboardApp, provider: str) -> bool:
    """Whether ``provider``'s row is drawn in the table's part of the screen."""
    table = app.main.table
    top = table.region.y + 1  # under the header
    lines = screen_lines(app)[top:table.region.bottom]
    return any(line.split()[:1] == [provider] for line in lines if line.strip())


class LineRecorder:
    """Which of the table's lines Textual asked it to draw."""

    def __init__(self, table: SelectionTable) -> None:
        self.lines: list[int] = []
        self._draw = table.render_line
        table.render_line = self._record  # type: ignore[method-assign]

    def _record(self, y: int):  # type: ignore[no-untyped-def]
        self.lines.append(y)
        return self._draw(y)

    def take(self) -> list[int]:
        lines, self.lines = self.lines, []
        return lines


async def test_scrolling_keeps_the_cursor_on_screen(large_file: Path, open_app) -> None:
    app = open_app(large_file, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main.table
        await wait_for(pilot, lambda: table.row_count == ROWS)
        last = table.visible_providers()[-1]
        await pilot.press("end")
        await pilot.pause()
        assert table.highlighted_provider == last == "xai"
        assert on_screen(app, "xai")
        assert table.providers_on_screen()[-1] == "xai"  # scrolled just far enough

        await pilot.press("pageup")
        await pilot.pause()
        assert table.cursor_row == table.row_count - 1 - len(table.providers_on_screen())
        assert on_screen(app, table.highlighted_provider)

        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_offset.y == 0
        assert on_screen(app, "anthropic")
        table.move_cursor(row=20)
        await pilot.press(*["down"] * 10)  # past the bottom of a 30-line terminal
        await pilot.pause()
        assert table.cursor_row == 30
        assert on_screen(app, table.highlighted_provider)
        assert not on_screen(app, "anthropic")
        assert table.highlighted_provider in screen_lines(app)[-2]  # the detail line follows

        table.move_cursor(row=5_000)
        await pilot.pause()
        assert on_screen(app, table.highlighted_provider)


async def test_click_selects_the_row_under_the_mouse_after_scrolling(
        large_file: Path, open_app) -> None:
    app = open_app(large_file, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main.table
        await wait_for(pilot, lambda: table.row_count > COUNT)
        table.move_cursor(row=4_000)
        await pilot.pause()
        shown = table.providers_on_screen()
        await pilot.click(SelectionTable, offset=(8, 3))  # the third row under the header
        assert table.highlighted_provider == shown[2]
        assert table.cursor_row == table.get_row_index(shown[2])

        await pilot.click(SelectionTable, offset=(30, 0))  # the "model" title
        await pilot.pause()
        assert table.row_order == "model"
        assert table.highlighted_provider == shown[2]  # the cursor followed its provider
        assert on_screen(app, shown[2])


async def test_changes_repaint_one_row_and_never_move_the_view(
        large_file: Path, open_app) -> None:
    app = open_app(large_file, watch=True)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main.table
        await wait_for(pilot, lambda: table.row_count > COUNT)
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        table.move_cursor(row=3)
        await pilot.pause()
        view = (table.scroll_offset, table.providers_on_screen(), table.highlighted_provider)
        assert "anthropic" in view[1] and "xai" not in view[1]
        recorder = LineRecorder(table)

        # anthropic is on screen (first row), xai is 10,000 rows further down
        await write_from_another_process_async(
            large_file, "with store.transaction() as tx:\n"
                        "    tx.set_model_selection('anthropic', 'claude-opus-4-5')\n"
                        "    tx.set_model_selection('xai', 'grok-4')\n")
        await wait_for(pilot, lambda: table.selection_of("xai").model_name == "grok-4",
                       what="the change to arrive")
        await pilot.pause()
        assert (table.scroll_offset, table.providers_on_screen(),
                table.highlighted_provider) == view
        assert recorder.take() == [1]  # anthropic's line (under the header), and no other
        assert on_screen(app, "anthropic")
        assert "claude-opus-4-5" in screen_lines(app)[table.region.y + 1]
        assert table.is_flashing("anthropic") and table.is_flashing("xai")


async def test_a_change_that_moves_a_row_keeps_the_cursor_on_its_provider(
        large_file: Path, open_app) -> None:
    app = open_app(large_file, watch=True)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main.table
        await wait_for(pilot, lambda: table.row_count > COUNT)
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await pilot.press("s", "s")  # newest first
        assert table.row_order == "updated"
        table.move_cursor(row=table.get_row_index("provider-00004"))
        await pilot.pause()
        assert table.get_row_index("anthropic") == COUNT  # the oldest selection, far below

        await write_from_another_process_async(
            large_file, "store.set_model_selection('anthropic', 'claude-opus-4-5')")
        await wait_for(pilot, lambda: table.visible_providers()[0] == "anthropic",
                       what="anthropic to move to the top")
        assert table.highlighted_provider == "provider-00004"
        assert on_screen(app, "provider-00004")
        assert table.row_count == ROWS
        assert len(set(table.visible_providers())) == table.row_count
