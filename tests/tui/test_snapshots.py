"""What the editor looks like, at 80x24 (SSH in tmux) and 120x40, compared with approved SVGs.

Fixed fixture files, a fixed clock, no watcher, steady cursors. After an intended change
of the look, review the new pictures and accept them with ``pytest --snapshot-update``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import FIXTURES, fixed_clock, wait_for

from modelboard.core import ChangeEvent, ConfigurationError, open_store
from modelboard.tui import ModelboardApp
from modelboard.tui.dialogs import (
    BulkReview,
    ConflictScreen,
    HelpScreen,
    HistoryScreen,
    ModelPicker,
)
from modelboard.tui.revisions import RevisionsScreen, RollbackConfirm
from modelboard.tui.screenshots import write_demo_revisions

pytestmark = pytest.mark.timeout(60)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
LOCATION = "config/model_selections.json"


@pytest.fixture
def snapshot_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[Callable[..., ModelboardApp]]:
    """An app on the fixture file, opened by a relative path so the header never varies."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR")  # the pictures show the real colours
    (tmp_path / "config").mkdir()
    shutil.copy(FIXTURES / "selections.json", tmp_path / LOCATION)
    shutil.copy(FIXTURES / "model_selections.history.jsonl",
                tmp_path / "config" / "model_selections.history.jsonl")
    stores = []

    def build(*, read_only: bool = False, reason: str | None = None) -> ModelboardApp:
        store = open_store(LOCATION, read_only=read_only, actor="tester@host")
        stores.append(store)
        return ModelboardApp(store, clock=fixed_clock, watch=False, cursor_blink=False,
                             read_only_reason=reason)

    yield build
    for store in stores:
        store.close()


async def ready(pilot: Any) -> None:
    """The auto-pilot may start before the main view has filled its table."""
    await wait_for(pilot, lambda: pilot.app.main.is_mounted and pilot.app.main.table.row_count,
                   what="the table")


def on(provider: str) -> Callable[[Any], Any]:
    async def move(pilot: Any) -> None:
        await ready(pilot)
        table = pilot.app.main.table
        table.move_cursor(row=table.get_row_index(provider))
        await pilot.pause()
    return move


@pytest.mark.parametrize("size", SIZES)
def test_main_view(snap_compare, snapshot_app, size) -> None:
    assert snap_compare(snapshot_app(), terminal_size=size, run_before=on("openai"))


def test_main_view_in_a_light_theme(snap_compare, snapshot_app) -> None:
    """Every row readable on a light background: unset, locked, marked, invalid, cursor."""
    async def light(pilot: Any) -> None:
        pilot.app.theme = "textual-light"
        await on("google")(pilot)
        await pilot.press("space")  # a marked row beside the others
        await pilot.press("down")
        await pilot.pause()
    assert snap_compare(snapshot_app(), terminal_size=(80, 24), run_before=light)


@pytest.mark.parametrize("size", SIZES)
def test_locked_row(snap_compare, snapshot_app, size) -> None:
    assert snap_compare(snapshot_app(), terminal_size=size, run_before=on("anthropic"))


@pytest.mark.parametrize("size", SIZES)
def test_edit_dialog(snap_compare, snapshot_app, size) -> None:
    async def edit(pilot: Any) -> None:
        await on("openai")(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelPicker))
        await pilot.press(*"gpt-4")

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=edit)


@pytest.mark.parametrize("size", SIZES)
def test_bulk_review(snap_compare, snapshot_app, size) -> None:
    async def review(pilot: Any) -> None:
        for provider in ("ollama", "vllm"):
            await on(provider)(pilot)
            await pilot.press("space")
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelPicker))
        await pilot.press(*"llama3.3:70b", "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, BulkReview))

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=review)


@pytest.mark.parametrize("size", SIZES)
def test_conflict(snap_compare, snapshot_app, size) -> None:
    async def conflict(pilot: Any) -> None:
        await on("openai")(pilot)
        pilot.app.push_screen(ConflictScreen(provider="openai", theirs="gpt-5",
                                             theirs_by="mallory@elsewhere", mine="gpt-4.1"))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConflictScreen))

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=conflict)


@pytest.mark.parametrize("size", SIZES)
def test_bad_file_banner(snap_compare, snapshot_app, size) -> None:
    async def break_file(pilot: Any) -> None:
        await on("openai")(pilot)
        app = pilot.app
        shutil.copy(FIXTURES / "broken.json", LOCATION)
        before = app.store.snapshot
        with pytest.raises(ConfigurationError) as caught:
            app.store.reload()
        app.main.show_change(ChangeEvent(before, before, (), caught.value, "external"))
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=break_file)


@pytest.mark.parametrize("size", SIZES)
def test_history(snap_compare, snapshot_app, size) -> None:
    async def history(pilot: Any) -> None:
        await on("openai")(pilot)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen))
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#history-table").row_count)

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=history)


@pytest.mark.parametrize("size", SIZES)
def test_read_only(snap_compare, snapshot_app, size) -> None:
    app = snapshot_app(read_only=True, reason="opened with --read-only")
    assert snap_compare(app, terminal_size=size, run_before=on("openai"))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, snapshot_app, size) -> None:
    async def help_screen(pilot: Any) -> None:
        await ready(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=help_screen)


@pytest.fixture
def revisions_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[ModelboardApp]:
    """The editor on the screenshots' revisions demo: real writes at fixed demo times."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR")
    write_demo_revisions(tmp_path / LOCATION)
    store = open_store(LOCATION, actor="tester@host")
    yield ModelboardApp(store, clock=fixed_clock, watch=False, cursor_blink=False)
    store.close()


async def revisions_on(pilot: Any, number: str) -> None:
    await ready(pilot)
    await pilot.press("v")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RevisionsScreen)
                   and pilot.app.screen.table.row_count, what="the revisions")
    table = pilot.app.screen.table
    table.move_cursor(row=table.get_row_index(number))
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_revisions(snap_compare, revisions_app, size) -> None:
    async def revisions(pilot: Any) -> None:
        await revisions_on(pilot, "2")

    assert snap_compare(revisions_app, terminal_size=size, run_before=revisions)


@pytest.mark.parametrize("size", SIZES)
def test_rollback_confirmation(snap_compare, revisions_app, size) -> None:
    async def confirmation(pilot: Any) -> None:
        await revisions_on(pilot, "2")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RollbackConfirm),
                       what="the question")

    assert snap_compare(revisions_app, terminal_size=size, run_before=confirmation)
