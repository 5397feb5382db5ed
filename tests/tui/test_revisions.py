"""The revisions screen (v): the log, a revision's diff against now, rollback after a
confirmation (y), conflicts while it is asked, read-only mode, and the banner that says when
the history's hash chain is broken. Driven with keys, checked on screen and on disk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tui_helpers import (
    footer_text,
    history_lines,
    history_path,
    screen_text,
    stored,
    wait_for,
    write_from_another_process_async,
)

from modelboard.core import open_store
from modelboard.tui import ModelboardApp
from modelboard.tui.dialogs import HelpScreen
from modelboard.tui.revisions import DiffScreen, RevisionsScreen, RollbackConfirm

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


@pytest.fixture
def revisions_file(data_file: Path) -> Path:
    """Four real writes through the store: numbered, chained history lines."""
    store = open_store(data_file, actor="alice@ops1", report=False)
    try:
        store.set_model_selection("openai", "gpt-4o", reason="launch default")  # 1
        store.set_model_selection("anthropic", "claude-sonnet-4-5")  # 2
        store.set_model_selection("openai", "gpt-4.1", actor="bob@ops2", reason="try 4.1")  # 3
        store.lock("anthropic", reason="eval until friday", actor="bob@ops2")  # 4
    finally:
        store.close()
    return data_file


async def open_revisions(pilot, app: ModelboardApp) -> RevisionsScreen:
    await wait_for(pilot, lambda: app.main.is_mounted and app.main.table.row_count,
                   what="the table")
    await pilot.press("v")
    await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen)
                   and app.screen.table.row_count, what="the revisions")
    assert isinstance(app.screen, RevisionsScreen)
    return app.screen


async def highlight(pilot, screen: RevisionsScreen, number: int) -> None:
    screen.table.move_cursor(row=screen.table.get_row_index(str(number)))
    await pilot.pause()


async def ask_rollback(pilot, app: ModelboardApp, number: int) -> RollbackConfirm:
    screen = await open_revisions(pilot, app)
    await highlight(pilot, screen, number)
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, RollbackConfirm), what="the question")
    assert isinstance(app.screen, RollbackConfirm)
    return app.screen


def words(app: ModelboardApp) -> str:
    """What the screen says, on one line: a notice, a banner or a dialog wraps its text
    where it must, between the borders of its box."""
    return " ".join(screen_text(app).translate(BORDERS).split())


BORDERS = str.maketrans({"│": " ", "▌": " "})


async def wait_for_words(pilot, app: ModelboardApp, phrase: str) -> None:
    try:
        await wait_for(pilot, lambda: phrase in words(app), what=repr(phrase))
    except AssertionError:
        print(screen_text(app))
        raise


def revision_rows(app: ModelboardApp) -> list[str]:
    """The log's lines on screen, from the first revision row down."""
    lines = screen_text(app).splitlines()
    return [line for line in lines if line.strip()[:1].isdigit()]


# -- the log and the diff -----------------------------------------------------------------------
async def test_v_lists_every_write_newest_first(revisions_file: Path, open_app) -> None:
    app = open_app(revisions_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_revisions(pilot, app)
        rows = revision_rows(app)
        assert [row.split()[0] for row in rows[:4]] == ["4", "3", "2", "1"]
        newest, third, _, first = rows[:4]
        assert "bob@ops2" in newest and "anthropic: locked" in newest
        assert "eval until friday" in newest
        assert "openai: gpt-4o -> gpt-4.1" in third and "try 4.1" in third
        assert "alice@ops1" in first and "launch default" in first
        assert "4 revisions" in screen_text(app)
        footer = await footer_text(pilot, app)
        assert "Diff" in footer and "Roll back" in footer and "Back" in footer
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main, what="back to the table")


async def test_enter_shows_a_revision_against_now_provider_by_provider(
        revisions_file: Path, open_app) -> None:
    app = open_app(revisions_file)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = await open_revisions(pilot, app)
        await highlight(pilot, screen, 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen)
                       and app.screen.query_one("#diff-table").row_count == 2,
                       what="the diff")
        text = screen_text(app)
        assert "Revision 1 -> now, provider by provider" in text
        assert re.search(r"anthropic\s+—\s+->\s+claude-sonnet-4-5 \(locked\)", text)
        assert re.search(r"openai\s+gpt-4o\s+->\s+gpt-4\.1", text)
        assert "2 providers changed since revision 1" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen))


# -- rolling back ---------------------------------------------------------------------------------
async def test_rollback_confirmed_with_y_lands_in_the_file(revisions_file: Path,
                                                           open_app) -> None:
    app = open_app(revisions_file)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = await open_revisions(pilot, app)
        await highlight(pilot, screen, 2)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackConfirm))
        text = screen_text(app)
        assert "Roll back to revision 2? 1 provider change" in text
        openai = next(line for line in text.splitlines() if "openai" in line)
        assert "gpt-4.1" in openai and "->" in openai and "gpt-4o" in openai
        await pilot.press("y")
        await wait_for(pilot, lambda: stored(revisions_file)["openai"]["model_name"] == "gpt-4o",
                       what="the rollback on disk")
        # one write, recorded as a new revision with its reason; the editor shows it
        last = history_lines(revisions_file)[-1]
        assert (last["rev"], last["reason"], last["actor"]) == (5, "rollback to 2", "tester@host")
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen)
                       and app.screen.table.row_count == 5, what="revision 5 in the log")
        assert revision_rows(app)[0].split()[0] == "5"
        assert app.main.table.selection_of("openai").model_name == "gpt-4o"
        await wait_for_words(pilot, app, "rolled back to revision 2 as revision 5")
    assert stored(revisions_file)["anthropic"]["editable"] is False  # the lock is untouched


@pytest.mark.parametrize("key", ["n", "escape", "enter", "x"])
async def test_anything_but_y_cancels_and_writes_nothing(revisions_file: Path, open_app,
                                                        key: str) -> None:
    before = revisions_file.read_bytes()
    history_before = history_path(revisions_file).read_bytes()
    app = open_app(revisions_file)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await ask_rollback(pilot, app, 1)
        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen),
                       what="the question closed")
        await wait_for_words(pilot, app, "Not rolled back to revision 1; nothing was written")
        await pilot.pause(0.2)
        assert not app.main.saving
    assert revisions_file.read_bytes() == before
    assert history_path(revisions_file).read_bytes() == history_before


async def test_a_locked_provider_is_kept_and_named_with_its_lock(revisions_file: Path,
                                                                open_app) -> None:
    app = open_app(revisions_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await ask_rollback(pilot, app, 1)  # anthropic did not exist at 1; it is locked now
        text = words(app)
        assert ("anthropic stays claude-sonnet-4-5 (locked by bob@ops2: eval until friday); "
                "unlock it first to roll it back") in text
        assert "1 provider change" in text  # openai only
        await pilot.press("y")
        await wait_for(pilot, lambda: stored(revisions_file)["openai"]["model_name"] == "gpt-4o",
                       what="the rollback")
        await wait_for_words(pilot, app, "kept as they are (locked): anthropic")
    after = stored(revisions_file)
    assert after["anthropic"]["model_name"] == "claude-sonnet-4-5"
    assert after["anthropic"]["lock_reason"] == "eval until friday"


@pytest.mark.parametrize("watch", [False, True], ids=["not-watching", "watching"])
async def test_a_write_from_elsewhere_before_y_is_not_overwritten(revisions_file: Path,
                                                                  open_app,
                                                                  watch: bool) -> None:
    app = open_app(revisions_file, watch=watch)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        if watch:
            await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await ask_rollback(pilot, app, 1)  # openai gpt-4.1 -> gpt-4o
        await write_from_another_process_async(
            revisions_file, "store.set_model_selection('openai', 'o3')")
        if watch:
            await wait_for(pilot, lambda: app.store.stored_snapshot["openai"].model_name == "o3",
                           what="their write to arrive")
        await pilot.press("y")
        # refused, said in one line, and asked again with what a rollback changes now
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackConfirm)
                       and "changed since you confirmed" in words(app),
                       what="the question again")
        text = words(app)
        assert "openai: changed by mallory@elsewhere to 'o3'" in text
        assert stored(revisions_file)["openai"]["model_name"] == "o3"  # theirs, untouched
        assert [line["rev"] for line in history_lines(revisions_file)][-1] == 5  # theirs
        assert re.search(r"openai\s+o3\s+->\s+gpt-4o", text)  # what it changes now
        await pilot.press("escape")  # the operator does not want it after all
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen))
    assert stored(revisions_file)["openai"]["model_name"] == "o3"


async def test_y_on_the_question_asked_again_writes_what_it_lists(revisions_file: Path,
                                                                 open_app) -> None:
    app = open_app(revisions_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await ask_rollback(pilot, app, 1)
        await write_from_another_process_async(
            revisions_file, "store.set_model_selection('google', 'gemini-2.5-pro')")
        await pilot.press("y")  # google did not exist at 1: the rollback now removes it
        await wait_for(pilot, lambda: "changed since you confirmed: google: changed by "
                       "mallory@elsewhere to 'gemini-2.5-pro'" in words(app),
                       what="the question again")
        assert stored(revisions_file)["google"]["model_name"] == "gemini-2.5-pro"
        assert re.search(r"google\s+gemini-2\.5-pro\s+->\s+—", words(app))
        await pilot.press("y")  # now confirmed knowing it
        await wait_for(pilot, lambda: "google" not in stored(revisions_file),
                       what="the rollback")
    assert stored(revisions_file)["openai"]["model_name"] == "gpt-4o"
    assert history_lines(revisions_file)[-1]["reason"] == "rollback to 1"


async def test_nothing_to_roll_back_says_so_and_asks_nothing(revisions_file: Path,
                                                             open_app) -> None:
    before = revisions_file.read_bytes()
    app = open_app(revisions_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = await open_revisions(pilot, app)
        await highlight(pilot, screen, 3)  # only the lock differs, and locks are kept
        await pilot.press("r")
        await wait_for_words(pilot, app, "Nothing to roll back: the document already is as at "
                             "revision 3")
        assert isinstance(app.screen, RevisionsScreen)
    assert revisions_file.read_bytes() == before


async def test_read_only_shows_the_log_and_diffs_but_refuses_r(revisions_file: Path,
                                                               open_app) -> None:
    before = revisions_file.read_bytes()
    app = open_app(revisions_file, read_only=True, read_only_reason="opened with --read-only")
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = await open_revisions(pilot, app)
        assert "Roll back" not in await footer_text(pilot, app)
        await highlight(pilot, screen, 1)
        await pilot.press("r")
        await wait_for_words(pilot, app, "read-only (opened with --read-only): nothing can be "
                             "rolled back from this editor")
        assert isinstance(app.screen, RevisionsScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen)
                       and app.screen.query_one("#diff-table").row_count == 2, what="the diff")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Roll back" not in screen_text(app) and "Diff" in screen_text(app)
    assert revisions_file.read_bytes() == before


async def test_help_lists_the_revision_keys(revisions_file: Path, open_app) -> None:
    app = open_app(revisions_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_revisions(pilot, app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        for words in ("Diff", "Roll back", "Back", "rolls the whole document back"):
            assert words in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Revisions" in screen_text(app)  # v, in the main view's help


async def test_keymap_ids_rebind_the_revision_keys(revisions_file: Path, open_app) -> None:
    app = open_app(revisions_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        app.set_keymap({"revisions": "V", "revisions.rollback": "R"})
        await wait_for(pilot, lambda: app.main.table.row_count, what="the table")
        await pilot.press("V")
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen)
                       and app.screen.table.row_count, what="the revisions")
        await highlight(pilot, app.screen, 1)
        await pilot.press("r")  # no longer the key
        await pilot.pause(0.2)
        assert isinstance(app.screen, RevisionsScreen)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackConfirm))


# -- the banner -----------------------------------------------------------------------------------
def tamper(path: Path, line_number: int) -> None:
    """Edit one history line by hand, keeping it valid JSON (a changed reason)."""
    history = history_path(path)
    lines = history.read_text().splitlines(keepends=True)
    record = json.loads(lines[line_number - 1])
    edited = lines[line_number - 1].replace(json.dumps(record["actor"]), '"someone@else"')
    assert edited != lines[line_number - 1]
    lines[line_number - 1] = edited
    history.write_text("".join(lines))


async def test_a_tampered_history_line_shows_a_banner_naming_it(revisions_file: Path,
                                                                open_app) -> None:
    tamper(revisions_file, 2)
    app = open_app(revisions_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await wait_for_words(pilot, app, "⚠ the history does not verify: "
                             "model_selections.history.jsonl line 2: its content does not "
                             "match its hash (the line was edited)")


async def test_the_banner_follows_a_tamper_found_after_a_reload(revisions_file: Path,
                                                                open_app) -> None:
    app = open_app(revisions_file, watch=True)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await wait_for(pilot, lambda: not app.main._checking_history, what="the first check")
        assert not app.main.query_one("#history-check").display
        assert "does not verify" not in screen_text(app)
        history = history_path(revisions_file)
        lines = history.read_text().splitlines(keepends=True)
        history.write_text("".join(lines[:1] + lines[2:]))  # line 2 deleted
        await write_from_another_process_async(
            revisions_file, "store.set_model_selection('google', 'gemini-2.5-pro')")
        await wait_for_words(pilot, app, "model_selections.history.jsonl line 2: does not follow "
                             "the line before it")


@pytest.mark.parametrize("history", ["chained", "from before the chain"])
async def test_a_whole_history_shows_no_banner(data_file: Path, request, open_app,
                                               history: str) -> None:
    fixture = "revisions_file" if history == "chained" else "seeded_file"
    path = request.getfixturevalue(fixture)
    app = open_app(path)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.main.is_mounted, what="the main view")
        await wait_for(pilot, lambda: not app.main._checking_history, what="the check")
        assert not app.main.query_one("#history-check").display
        assert "does not verify" not in screen_text(app)
