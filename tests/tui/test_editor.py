"""The editor driven with keys and the mouse, checked on the screen and in the file on disk."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from tui_helpers import (
    FIXTURES,
    NOW,
    footer_text,
    history_lines,
    put_cursor_on,
    screen_text,
    stored,
    wait_for,
    write_from_another_process,
    write_from_another_process_async,
)

from modelboard.core import Catalog, open_store
from modelboard.tui import ModelboardApp
from modelboard.tui.dialogs import (
    BulkReview,
    ConflictChoice,
    ConflictScreen,
    HelpScreen,
    HistoryScreen,
    ModelPicker,
)
from modelboard.tui.table import SelectionTable

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


# -- starting ------------------------------------------------------------------------------
async def test_missing_file_shows_the_catalog_and_is_created_on_first_save(
        data_file: Path, open_app) -> None:
    app = open_app(data_file)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main.table
        assert set(table.visible_providers()) == set(Catalog.default())
        assert all(table.selection_of(p) is None for p in table.providers())
        text = screen_text(app)
        assert "openai" in text and "—" in text
        assert not data_file.parent.exists() or not any(data_file.parent.iterdir())

        put_cursor_on(app, "openai")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker), what="the picker")
        await pilot.press(*"gpt-4.1-mini", "enter")
        await wait_for(pilot, data_file.exists, what="the file to be created")
        await wait_for(pilot, lambda: table.selection_of("openai") is not None)
        assert stored(data_file)["openai"]["model_name"] == "gpt-4.1-mini"
        assert stored(data_file)["openai"]["updated_by"] == "tester@host"
        assert "gpt-4.1-mini" in screen_text(app)


async def test_table_shows_model_lock_age_and_author(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)):
        lines = screen_text(app).splitlines()
        row = {line.split()[0]: line for line in lines[2:17] if line.strip()}
        assert row["openai"].split()[1:] == ["gpt-4o", "3m", "ago", "alice"]
        assert row["anthropic"].split()[1:5] == ["claude-sonnet-4-5", "locked", "1d", "ago"]
        assert "30s ago" in row["vllm"]
        assert row["cohere"].split()[1] == "—"
        # a provider the catalog does not know still gets its row (cut to fit 80 columns)
        assert "12d ago" in row["internal-gat…"]


# -- editing --------------------------------------------------------------------------------
async def test_edit_filters_highlights_best_match_and_saves(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "openai")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        picker = app.screen
        assert app.focused is picker.query_one("#model-filter")
        options = picker.query_one("#model-options")
        assert options.highlighted_option.id == "model:gpt-4o"  # the current model first
        await pilot.press(*"o3")
        assert options.highlighted_option.id == "model:o3"  # exact beats prefix
        assert {options.get_option_at_index(i).id for i in range(options.option_count)} >= {
            "model:o3", "model:o3-mini", "model:o3-pro"}
        await pilot.press("down")
        assert options.highlighted_option.id == "model:o3-mini"
        await pilot.press("enter")
        await wait_for(pilot, lambda: stored(seeded_file)["openai"]["model_name"] == "o3-mini")
        await wait_for(pilot, lambda: "o3-mini" in screen_text(app))
        assert history_lines(seeded_file)[-1]["new"] == "o3-mini"


async def test_unknown_model_shows_core_message_inline_and_escape_changes_nothing(
        seeded_file: Path, open_app) -> None:
    before = seeded_file.read_bytes()
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "openai")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"gpt-4oo", "enter")  # matches nothing in the list
        await pilot.pause()
        assert isinstance(app.screen, ModelPicker)
        text = screen_text(app)
        assert "not served by openai" in text and "did you mean" in text and "'gpt-4o'" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ModelPicker))
    assert seeded_file.read_bytes() == before


async def test_any_model_provider_takes_free_text(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "ollama")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"qwen3:32b")
        assert "use qwen3:32b as typed" in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: stored(seeded_file).get("ollama", {}).get("model_name")
                       == "qwen3:32b")


async def test_locked_row_disables_edit_and_remove_and_says_why(
        seeded_file: Path, open_app) -> None:
    before = seeded_file.read_bytes()
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        put_cursor_on(app, "anthropic")
        await pilot.pause()
        main = app.main
        assert main.check_action("edit", ()) is None  # shown, disabled
        assert main.check_action("remove", ()) is None
        assert main.check_action("lock", ()) is False  # on a locked row, l is Unlock
        assert main.check_action("unlock", ()) is True  # unlocking stays possible
        footer = await footer_text(pilot, app)
        assert "e Edit" in footer and "d Remove" in footer
        assert "l Unlock" in footer and "l Lock" not in footer
        put_cursor_on(app, "openai")
        await pilot.pause()
        footer = await footer_text(pilot, app)
        assert "l Lock" in footer and "l Unlock" not in footer
        assert main.check_action("unlock", ()) is False
        put_cursor_on(app, "anthropic")
        await pilot.pause()
        await pilot.press("e")
        await wait_for(pilot, lambda: "pinned for the eval run" in screen_text(app),
                       what="the explanation")
        text = screen_text(app)
        assert "locked by bob@ops2" in text
        assert not isinstance(app.screen, ModelPicker)
        await pilot.press("d")
        await pilot.press("enter")  # enter on a locked row explains too, opens nothing
        await pilot.pause()
        assert app.screen is main
    assert seeded_file.read_bytes() == before


async def test_lock_with_reason_then_unlock(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "openai")
        await pilot.press("l")
        await pilot.pause()
        await pilot.press(*"incident 42", "enter")
        await wait_for(pilot, lambda: stored(seeded_file)["openai"]["editable"] is False)
        assert stored(seeded_file)["openai"]["lock_reason"] == "incident 42"
        await wait_for(pilot, lambda: "locked" in screen_text(app).splitlines()[13])
        assert app.main.check_action("edit", ()) is None
        await pilot.press("l")
        await pilot.pause()
        assert "Unlock" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: stored(seeded_file)["openai"]["editable"] is True)


async def test_remove_asks_first(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "google")
        await pilot.press("d")
        await pilot.pause()
        assert "Remove google's selection" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert "google" in stored(seeded_file)
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: "google" not in stored(seeded_file))
        await wait_for(pilot, lambda: app.main.table.selection_of("google") is None)


async def test_saves_run_off_the_ui_thread(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    threads: list[str] = []
    store = app.store
    real_set = store.set_model_selection

    def recording_set(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real_set(*args, **kwargs)

    store.set_model_selection = recording_set  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "google")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"gemini-2.5-flash", "enter")
        await wait_for(pilot, lambda: threads and not app.main.saving)
    assert threads and threads[0] != threading.main_thread().name
    assert stored(seeded_file)["google"]["model_name"] == "gemini-2.5-flash"


# -- bulk --------------------------------------------------------------------------------
async def test_bulk_reviews_old_to_new_and_writes_all_at_once(
        seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "ollama")
        await pilot.press("space")  # marks ollama, moves to openai
        put_cursor_on(app, "vllm")
        await pilot.press("space")
        assert app.main.table.marked == ["ollama", "vllm"]
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"llama3.3:70b", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BulkReview))
        text = screen_text(app)
        assert "meta-llama/Llama-3.1-70B-Instruct" in text and "llama3.3:70b" in text
        assert "->" in text
        assert "llama3.3:70b" not in seeded_file.read_text()
        await pilot.press("a")
        await wait_for(pilot, lambda: stored(seeded_file).get("ollama", {}).get("model_name")
                       == "llama3.3:70b")
        assert stored(seeded_file)["vllm"]["model_name"] == "llama3.3:70b"
        await wait_for(pilot, lambda: not app.main.table.marked, what="marks cleared")
    lines = history_lines(seeded_file)[-2:]
    assert {line["provider"] for line in lines} == {"ollama", "vllm"}
    assert lines[0]["revision"] == lines[1]["revision"]  # one write


async def test_bulk_with_a_locked_row_applies_the_rest_and_keeps_it_marked(
        seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "anthropic")
        await pilot.press("space")
        put_cursor_on(app, "openrouter")
        await pilot.press("space", "b")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"claude-haiku-4-5", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BulkReview))
        text = screen_text(app)
        assert "✗ locked by bob" in text
        assert "a applies the 1 row that can change" in text
        await pilot.press("a")
        await wait_for(pilot, lambda: stored(seeded_file).get("openrouter", {}).get(
            "model_name") == "claude-haiku-4-5", what="the rest applied")
        await wait_for(pilot, lambda: app.main.table.marked == ["anthropic"],
                       what="the blocked row still marked")
    assert stored(seeded_file)["anthropic"]["model_name"] == "claude-sonnet-4-5"


# -- history --------------------------------------------------------------------------------
async def test_history_lists_changes_and_restores_an_older_model(
        seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(100, 30)) as pilot:
        put_cursor_on(app, "openai")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: "3 changes" in screen_text(app))
        text = screen_text(app)
        assert "carol@ops1" in text and "gpt-4 -> gpt-4.1" in text
        await pilot.press("down")  # the second newest: carol's gpt-4.1
        await pilot.press("enter")
        await wait_for(pilot, lambda: stored(seeded_file)["openai"]["model_name"] == "gpt-4.1")


# -- filter, sort, help, palette ---------------------------------------------------------
async def test_filter_narrows_keeps_on_enter_and_clears_on_escape(
        seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main.table
        await pilot.press("slash", *"gpt")
        assert table.visible_providers() == ["openai"]
        await pilot.press(*"-4o")
        assert table.visible_providers() == ["openai"]
        await pilot.press(*["backspace"] * 6, *"ops1")
        assert table.visible_providers() == ["google", "openai", "vllm"]
        await pilot.press("enter")
        assert app.focused is table
        assert table.visible_providers() == ["google", "openai", "vllm"]
        assert "3 shown" in screen_text(app)
        await pilot.press("escape")
        assert len(table.visible_providers()) == 15
        assert app.focused is table


async def test_sort_cycles_and_keeps_the_cursor_on_its_provider(
        seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main.table
        put_cursor_on(app, "openai")
        await pilot.press("s")
        assert table.row_order == "model"
        assert table.visible_providers()[:2] == ["anthropic", "google"]
        assert table.highlighted_provider == "openai"
        await pilot.press("s")
        assert table.row_order == "updated"
        assert table.visible_providers()[:3] == ["vllm", "openai", "google"]
        assert table.highlighted_provider == "openai"
        await pilot.press("s")
        assert table.row_order == "provider"
        assert "sort: provider" in screen_text(app)


async def test_help_lists_every_key(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        for key, word in [("e", "Edit"), ("l", "Lock"), ("l", "Unlock"), ("d", "Remove"),
                          ("spc", "Mark"),
                          ("b", "Bulk"), ("h", "History"), ("/", "Filter"), ("s", "Sort"),
                          ("ctrl+p", "Palette"), ("q", "Quit"), ("enter", "Edit")]:
            assert re.search(rf"│\s+{re.escape(key)}\s+{word}\s", text), (key, word)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


async def test_palette_offers_every_action(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "openai")
        titles = [title for _, title, _ in app.main.available_commands()]
        assert titles == ["Edit", "Lock", "Remove", "Mark", "History", "Filter", "Sort",
                          "Fleet", "Revisions", "Help"]
        put_cursor_on(app, "anthropic")  # locked: unlock instead of lock, no edit or remove
        titles = [title for _, title, _ in app.main.available_commands()]
        assert titles == ["Unlock", "Mark", "History", "Filter", "Sort", "Fleet", "Revisions", "Help"]
        put_cursor_on(app, "openai")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"remove")
        await wait_for(pilot, lambda: "Remove the selection" in screen_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Remove openai's selection" in screen_text(app))
        await pilot.press("y")
        await wait_for(pilot, lambda: "openai" not in stored(seeded_file))


async def test_mouse_click_highlights_then_edits(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main.table
        row = table.get_row_index("google")
        await pilot.click(SelectionTable, offset=(8, row + 1))
        assert table.highlighted_provider == "google"
        await pilot.click(SelectionTable, offset=(8, row + 1))
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.click("#model-options", offset=(2, 2))  # the third listed model
        await wait_for(pilot, lambda: stored(seeded_file)["google"]["model_name"]
                       == "gemini-2.5-flash")


# -- live ------------------------------------------------------------------------------------
async def test_change_from_another_process_appears_in_place(
        seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        table = app.main.table
        await pilot.press("slash", *"ops1", "enter")
        assert table.visible_providers() == ["google", "openai", "vllm"]
        put_cursor_on(app, "openai")
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await write_from_another_process_async(
            seeded_file, "store.set_model_selection('google', 'gemini-2.5-flash')")
        await wait_for(pilot, lambda: table.selection_of("google").model_name
                       == "gemini-2.5-flash", what="the change to arrive")
        assert table.is_flashing("google")  # highlighted briefly (1.5 s)
        await wait_for(pilot, lambda: "Changed on disk" in screen_text(app), what="the note")
        text = screen_text(app)
        assert "google: gemini-2.5-pro ->" in text
        assert "mallory@elsewhere" in text
        assert table.highlighted_provider == "openai"  # the cursor stayed on its provider
        assert table.filter_text == "ops1"  # the filter stayed...
        # ...and google, now set by mallory@elsewhere, no longer matches it
        assert table.visible_providers() == ["openai", "vllm"]
        await pilot.press("escape")
        assert table.highlighted_provider == "openai"
        assert "gemini-2.5-flash" in screen_text(app)


async def conflict_on_openai(pilot, app, data_file: Path, theirs: str) -> None:
    """Start editing openai, let another process set it to ``theirs``, then save
    gpt-4.1: the editor must stop at the conflict screen."""
    put_cursor_on(app, "openai")
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
    await write_from_another_process_async(
        data_file, f"store.set_model_selection('openai', {theirs!r})")
    await wait_for(pilot, lambda: app.store.get_model_selection("openai").model_name == theirs,
                   what="the other change")
    await pilot.press(*"gpt-4.1", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen))


async def test_conflict_keeps_the_pending_edit(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await conflict_on_openai(pilot, app, seeded_file, "gpt-5")
        text = screen_text(app)
        assert "gpt-5" in text and "mallory@elsewhere" in text and "gpt-4.1" in text
        assert stored(seeded_file)["openai"]["model_name"] == "gpt-5"  # not overwritten
        await pilot.press("e")  # edit again: the picker has my value
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        assert app.screen.query_one("#model-filter").value == "gpt-4.1"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        assert stored(seeded_file)["openai"]["model_name"] == "gpt-5"


async def test_conflict_overwrite_and_keep_theirs(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        for choice, other, expected in [("o", "gpt-5", "gpt-4.1"), ("t", "o3", "o3")]:
            await conflict_on_openai(pilot, app, seeded_file, other)
            await pilot.press(choice)
            await wait_for(pilot, lambda expected=expected: app.screen is app.main and
                           not app.main.saving and
                           stored(seeded_file)["openai"]["model_name"] == expected)


async def test_bad_file_shows_banner_keeps_table_and_waits(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        put_cursor_on(app, "openai")
        good = seeded_file.read_text()
        broken = good.replace('"gpt-4o",', '"gpt-4o"', 1)
        seeded_file.write_text(broken)
        # the parser stops at the line after the missing comma
        bad_line = broken.splitlines().index('    "model_name": "gpt-4o"') + 2
        await wait_for(pilot, lambda: app.store.load_error is not None, what="the load error")
        await wait_for(pilot, lambda: "changes wait" in screen_text(app), what="the banner")
        text = screen_text(app)
        unwrapped = "".join(line.strip() for line in text.splitlines())  # a long path wraps
        assert "cannot read" in text and "model_selections.json" in unwrapped
        assert f"line {bad_line}, column" in text
        assert "Expecting ',' delimiter" in text
        assert app.main.table.selection_of("openai").model_name == "gpt-4o"  # last good
        assert app.main.check_action("edit", ()) is None
        await pilot.press("e")
        await pilot.pause()
        assert app.screen is app.main
        seeded_file.write_text(good.replace('"gpt-4o"', '"gpt-4.1"'))
        await wait_for(pilot, lambda: app.store.load_error is None, what="recovery")
        await wait_for(pilot, lambda: "changes wait" not in screen_text(app))
        assert app.main.check_action("edit", ()) is True
        assert app.main.table.selection_of("openai").model_name == "gpt-4.1"


# -- read-only --------------------------------------------------------------------------
async def test_read_only_shows_and_reaches_no_write_action_and_writes_nothing(
        seeded_file: Path, open_app) -> None:
    folder = seeded_file.parent
    listing = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    app = open_app(seeded_file, read_only=True, read_only_reason="opened with --read-only")
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "openai")
        footer = await footer_text(pilot, app)
        text = screen_text(app)
        assert "READ-ONLY" in text.splitlines()[0]
        assert "READ-ONLY: opened with --read-only" in text
        for word in ("Edit", "Lock", "Remove", "Mark", "Bulk"):
            assert word not in footer
        assert "History" in footer and "Filter" in footer
        for key in ("e", "enter", "l", "d", "space", "b"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is app.main, key
        assert app.main.table.marked == []
        titles = [title for _, title, _ in app.main.available_commands()]
        assert titles == ["History", "Filter", "Sort", "Fleet", "Revisions", "Help"]
        await pilot.press("ctrl+p", *"edit")
        await pilot.pause(0.3)
        assert "Choose the highlighted" not in screen_text(app)
        await pilot.press("escape")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: "3 changes" in screen_text(app))
        assert "restore" not in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == listing


async def test_read_only_follows_live_changes(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, read_only=True, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await write_from_another_process_async(
            seeded_file, "store.set_model_selection('openai', 'gpt-5')")
        await wait_for(pilot, lambda: "gpt-5" in screen_text(app), what="the change")
    lock_files = sorted(p.name for p in seeded_file.parent.iterdir() if p.name.endswith(".lock"))
    # the other process took the writers' lock (and made its twin); the editor adds nothing
    assert lock_files in ([], [".model_selections.json.lock", "model_selections.json.lock"])


# -- what is shown is text --------------------------------------------------------------------
async def test_markup_shows_literally_and_control_characters_never_reach_the_terminal(
        data_file: Path, open_app) -> None:
    data_file.parent.mkdir(parents=True)
    data_file.write_text(json.dumps({"openai": {
        "model_name": "[red]gpt-4o[/red]", "editable": False,
        "updated_by": "eve\u001b]0;pwned\u0007\u001b[2J@x",
        "lock_reason": "see [bold]runbook[/bold]\u202e\r\nnow",
        "last_updated": "2025-01-15T11:00:00+00:00"}}))
    app = open_app(data_file)
    async with app.run_test(size=(120, 24), notifications=True) as pilot:
        put_cursor_on(app, "openai")
        await footer_text(pilot, app)
        detail = screen_text(app).splitlines()[-2]
        assert "see [bold]runbook[/bold]" in detail
        await pilot.press("e")
        await wait_for(pilot, lambda: "Cannot edit" in screen_text(app))
        svg = app.export_screenshot()
        text = screen_text(app)
    assert "[red]gpt-4o[/red]" in text
    assert "eve]0;pwned[2J@x" in text
    for char in ("\u001b", "\u0007", "\u202e", "\r"):
        assert char not in svg


def test_another_process_helper_really_writes(seeded_file: Path) -> None:
    write_from_another_process(seeded_file, "store.set_model_selection('openai', 'gpt-5')")
    assert stored(seeded_file)["openai"]["updated_by"] == "mallory@elsewhere"


# -- safety nets -----------------------------------------------------------------------------
async def test_enter_on_a_conflict_never_overwrites_theirs(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await conflict_on_openai(pilot, app, seeded_file, "gpt-5")
        await pilot.press("enter")  # typed ahead, or out of habit: edits again
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        assert app.screen.query_one("#model-filter").value == "gpt-4.1"
        assert not app.main.saving
        assert stored(seeded_file)["openai"]["model_name"] == "gpt-5"


async def test_enter_on_a_remove_conflict_keeps_theirs(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        choices: list[object] = []
        app.push_screen(ConflictScreen(provider="openai", theirs="gpt-5", theirs_by="x",
                                       mine=None, can_edit_again=False), choices.append)
        await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: choices, what="a choice")
        assert choices == [ConflictChoice.KEEP_THEIRS]


async def test_unreadable_history_is_reported_and_the_editor_stays(
        seeded_file: Path, open_app) -> None:
    history = seeded_file.with_name("model_selections.history.jsonl")
    history.unlink()
    history.mkdir()  # stands for a history this user may not read
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        put_cursor_on(app, "openai")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: "cannot read the history" in screen_text(app),
                       what="the reason")
        assert app.is_running
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


async def test_a_bad_file_never_invites_a_key_that_waits(data_file: Path, open_app) -> None:
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes((FIXTURES / "broken.json").read_bytes())
    app = open_app(data_file)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        put_cursor_on(app, "cohere")
        await pilot.pause()
        assert "e sets one" not in screen_text(app).splitlines()[-2]
        await pilot.press("l")
        await wait_for(pilot, lambda: "Cannot lock" in screen_text(app), what="why not")


async def test_keys_that_do_nothing_here_say_why(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        put_cursor_on(app, "cohere")  # nothing selected: nothing to lock
        await pilot.press("l")
        await wait_for(pilot, lambda: "cohere has no model selected" in screen_text(app))
        await pilot.press("b")  # nothing marked
        await wait_for(pilot, lambda: "no rows are marked" in screen_text(app))
        assert app.screen is app.main


async def test_marked_rows_are_reviewed_in_table_order(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        for provider in ("openrouter", "lmstudio", "ollama"):
            put_cursor_on(app, provider)
            await pilot.press("space")
        assert app.main.table.marked == ["lmstudio", "ollama", "openrouter"]
        await pilot.press("s")  # by model: all three unset, then by provider
        assert app.main.table.marked == ["lmstudio", "ollama", "openrouter"]
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"llama3", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BulkReview))
        rows = [line.split()[1] for line in screen_text(app).splitlines()
                if "->" in line]
        assert rows == ["lmstudio", "ollama", "openrouter"]


async def test_screen_and_app_keep_textuals_watch_method(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        seen: list[str] = []

        def screen_saw(theme: str) -> None:
            seen.append(f"screen: {theme}")

        def app_saw(theme: str) -> None:
            seen.append(f"app: {theme}")

        app.main.watch(app, "theme", screen_saw, init=False)
        app.watch(app, "theme", app_saw, init=False)
        app.theme = "textual-light"
        await pilot.pause()
        assert sorted(seen) == ["app: textual-light", "screen: textual-light"]



async def test_rows_age_together_whatever_the_cursor(seeded_file: Path) -> None:
    now = [NOW]
    store = open_store(seeded_file, actor="tester@host")
    app = ModelboardApp(store, clock=lambda: now[0], watch=False, cursor_blink=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.main.table
            put_cursor_on(app, "openai")
            await pilot.pause()
            assert "30s ago" in table.row_text("vllm")
            now[0] = NOW + timedelta(seconds=12)
            put_cursor_on(app, "vllm")  # drawn again as highlighted, with the rows' "now"
            await pilot.pause()
            assert "30s ago" in screen_row(app, "vllm")
            table.refresh_ages()  # the periodic tick: every row ages at once
            await pilot.pause()
            assert "42s ago" in screen_row(app, "vllm")
    finally:
        store.close()


def screen_row(app: ModelboardApp, provider: str) -> str:
    return next(line for line in screen_text(app).splitlines()[:-2]
                if line.split()[:1] == [provider])
