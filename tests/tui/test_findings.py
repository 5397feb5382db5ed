"""What an operator ran into, each as a test: typed edits kept through refusals, the dialog
left alone by live changes, data the core accepts shown without a crash, bulk across
providers, locks that keep their story, and the rough edges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tui_helpers import (
    footer_text,
    put_cursor_on,
    replace_file,
    screen_text,
    stored,
    wait_for,
    write_from_another_process,
    write_from_another_process_async,
)

from modelboard.tui import ModelboardApp
from modelboard.tui.dialogs import BulkReview, ConfirmDialog, HistoryScreen, ModelPicker

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


async def open_picker(pilot, app: ModelboardApp, provider: str, typed: str) -> ModelPicker:
    put_cursor_on(app, provider)
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker), what="the picker")
    await pilot.press(*typed)
    assert isinstance(app.screen, ModelPicker)
    return app.screen


def field(app: ModelboardApp) -> str:
    return str(app.screen.query_one("#model-filter").value)


# -- a typed edit survives every refusal ------------------------------------------------------
async def test_a_lock_arriving_keeps_the_typed_edit(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await open_picker(pilot, app, "openai", "gpt-5")
        await write_from_another_process_async(
            seeded_file, "store.lock('openai', reason='eval until friday')")
        await wait_for(pilot, lambda: app.main.table.selection_of("openai").locked,
                       what="the lock to arrive")
        await pilot.press("enter")
        # refused: back in the dialog with what was typed, and why
        try:
            await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker)
                           and "locked by mallory" in screen_text(app), what="the refusal")
        except AssertionError:
            print(screen_text(app))
            raise
        assert field(app) == "gpt-5"
        assert "eval until friday" in screen_text(app)
        await write_from_another_process_async(seeded_file, "store.unlock('openai')")
        await wait_for(pilot, lambda: not app.main.table.selection_of("openai").locked,
                       what="the unlock to arrive")
        await pilot.press("enter")  # retry
        await wait_for(pilot, lambda: stored(seeded_file)["openai"]["model_name"] == "gpt-5",
                       what="the retried save")


async def test_a_bad_file_keeps_the_typed_edit_and_escape_drops_it(
        seeded_file: Path, open_app) -> None:
    good = seeded_file.read_text()
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await open_picker(pilot, app, "openai", "o3")
        seeded_file.write_text('{"openai": {"model_name": ')
        await wait_for(pilot, lambda: app.store.load_error is not None, what="the bad file")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker)
                       and "not saved" in screen_text(app), what="the refusal")
        assert field(app) == "o3"
        seeded_file.write_text(good)
        await wait_for(pilot, lambda: app.store.load_error is None, what="the file fixed")
        await pilot.press("escape")  # the operator drops it: the only way it goes
        await wait_for(pilot, lambda: app.screen is app.main)
        assert stored(seeded_file)["openai"]["model_name"] == "gpt-4o"


# -- a live change leaves the dialog alone, but its header follows -------------------------------
async def test_a_live_change_updates_the_header_and_nothing_else(
        seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        picker = await open_picker(pilot, app, "openai", "o3")
        options = picker.query_one("#model-options")
        await pilot.press("down")  # the operator's own choice in the list: o3-mini
        assert options.highlighted_option.id == "model:o3-mini"
        await write_from_another_process_async(
            seeded_file, "store.set_model_selection('openai', 'gpt-5')")
        await wait_for(pilot, lambda: "now gpt-5, changed by mallory" in screen_text(app),
                       what="the header")
        assert field(app) == "o3"
        assert options.highlighted_option.id == "model:o3-mini"
        await pilot.press("enter")  # judged by the conflict screen, as before
        await wait_for(pilot, lambda: "changed while you were editing" in screen_text(app))
        assert stored(seeded_file)["openai"]["model_name"] == "gpt-5"


# -- data the core accepts ---------------------------------------------------------------------
async def test_year_one_sorts_and_follows_live(seeded_file: Path, open_app) -> None:
    document = stored(seeded_file)
    document["google"]["last_updated"] = "0001-01-01"
    replace_file(seeded_file, document)
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await pilot.press("s", "s")
        assert app.main.table.row_order == "updated"
        # the newest first; year 1 last among the dated rows
        order = app.main.table.visible_providers()
        assert order.index("openai") < order.index("google")
        document["openai"]["model_name"] = "o3"
        document["vllm"]["last_updated"] = "9999-12-31T23:59:59-12:00"
        replace_file(seeded_file, document)
        await wait_for(pilot, lambda: app.main.table.selection_of("openai").model_name == "o3",
                       what="the table to follow the file")
        assert app.main.table.visible_providers()[0] == "vllm"
        assert "o3" in screen_text(app)


async def test_history_lines_with_odd_types_show(seeded_file: Path, open_app) -> None:
    history = seeded_file.with_name("model_selections.history.jsonl")
    with history.open("a") as lines:
        for odd in (5, [1, 2], {"a": 1}, True):
            lines.write(json.dumps({"time": "2025-01-15T11:58:00", "actor": 7,
                                    "provider": "openai", "action": "set", "old": odd,
                                    "new": "gpt-4o", "revision": None}) + "\n")
    app = open_app(seeded_file)
    async with app.run_test(size=(100, 30)) as pilot:
        put_cursor_on(app, "openai")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: "change" in screen_text(app)
                       or "cannot read" in screen_text(app), what="the history")
        assert "[1, 2] -> gpt-4o" in screen_text(app) or "cannot read" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


# -- bulk across providers ---------------------------------------------------------------------
async def test_bulk_across_providers_reviews_every_row_and_applies_the_rest(
        seeded_file: Path, open_app) -> None:
    document = stored(seeded_file)
    document["google"].update(editable=False, lock_reason="eval until friday")
    replace_file(seeded_file, document)
    app = open_app(seeded_file)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.main.table
        for provider in ("azure-openai", "google", "vllm", "xai"):
            put_cursor_on(app, provider)
            await pilot.press("space")
            assert table.highlighted_provider == provider  # space does not move
        assert table.marked_count == 4
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        text = screen_text(app)
        assert "azure-openai, vllm accept any model" in text
        await pilot.press(*"grok-4")
        options = app.screen.query_one("#model-options")
        assert options.highlighted_option.id == "model:grok-4"
        assert "no listed model matches" not in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BulkReview))
        text = screen_text(app)
        for provider in ("azure-openai", "google", "vllm", "xai"):
            assert provider in text
        google = next(line for line in text.splitlines() if " google " in line and "->" in line)
        assert "✗ model 'grok-4' is not served by" in google
        assert "a applies the 3 rows that can change" in text
        await pilot.press("a")
        await wait_for(pilot, lambda: stored(seeded_file).get("xai", {}).get("model_name")
                       == "grok-4", what="the write")
        after = stored(seeded_file)
        assert after["azure-openai"]["model_name"] == after["vllm"]["model_name"] == "grok-4"
        assert after["google"]["model_name"] == "gemini-2.5-pro"
        await wait_for(pilot, lambda: table.marked == ["google"], what="the marks")
        await pilot.press("u")  # unmark all
        assert table.marked_count == 0


async def test_a_review_where_nothing_can_change_says_so(seeded_file: Path, open_app) -> None:
    before = seeded_file.read_bytes()
    app = open_app(seeded_file, notifications=None) if False else open_app(seeded_file)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        put_cursor_on(app, "anthropic")  # locked in the fixture
        await pilot.press("space", "b")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"claude-opus-4-5", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BulkReview))
        assert "No row can change" in screen_text(app)
        await pilot.press("a")
        await wait_for(pilot, lambda: "Nothing to apply" in screen_text(app))
        assert isinstance(app.screen, BulkReview)
    assert seeded_file.read_bytes() == before


# -- locks keep their story ----------------------------------------------------------------------
async def test_unlock_confirmation_says_who_and_why(seeded_file: Path, open_app) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(100, 30)) as pilot:
        put_cursor_on(app, "anthropic")
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "locked by bob@ops2: pinned for the eval run" in screen_text(app)


def run_cli(path: Path, *args: str, user: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELBOARD_FILE": str(path), "USER": user, "LOGNAME": user}
    return subprocess.run([sys.executable, "-m", "modelboard.core.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_locking_a_locked_row_keeps_its_reason_and_says_so(seeded_file: Path) -> None:
    locked = run_cli(seeded_file, "lock", "google", "--reason", "eval until friday",
                     user="alice")
    assert locked.returncode == 0, locked.stderr
    before = seeded_file.read_bytes()
    again = run_cli(seeded_file, "lock", "google", user="bob")
    assert again.returncode == 0, again.stderr
    assert "already locked by alice@" in again.stdout
    assert again.stdout.strip().endswith(": eval until friday")
    assert seeded_file.read_bytes() == before  # nothing changed, nothing written
    renewed = run_cli(seeded_file, "lock", "google", "--reason", "until monday", user="bob")
    assert renewed.returncode == 0, renewed.stderr
    entry = stored(seeded_file)["google"]
    assert entry["lock_reason"] == "until monday" and entry["updated_by"].startswith("bob@")
    history = seeded_file.with_name("model_selections.history.jsonl").read_text()
    assert json.loads(history.splitlines()[-1])["reason"] == "until monday"


# -- no terminal, no editor --------------------------------------------------------------------
@pytest.mark.parametrize("args", [(), ("tui",)])
def test_without_a_terminal_the_editor_exits_at_once(seeded_file: Path, tmp_path: Path,
                                                     args: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    command = Path(sys.executable).with_name("modelboard")
    started = time.monotonic()
    with out.open("w") as sink:
        done = subprocess.run([str(command), *args, "--file", str(seeded_file)],
                              stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.PIPE,
                              text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert time.monotonic() - started < 10
    assert len(done.stderr.strip().splitlines()) == 1
    assert "modelboard list" in done.stderr and "ssh -t" in done.stderr
    assert out.read_text() == ""  # not one escape code


# -- rough edges -------------------------------------------------------------------------------
async def test_restoring_the_current_model_says_unchanged(seeded_file: Path, open_app) -> None:
    write_from_another_process(seeded_file, "store.set_model_selection('openai', 'gpt-4.1')")
    write_from_another_process(seeded_file, "store.set_model_selection('openai', 'gpt-4o')")
    app = open_app(seeded_file)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        put_cursor_on(app, "openai")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: "changes" in screen_text(app), what="the history")
        await pilot.press("enter")  # the newest line: set to gpt-4o, which it is now
        await wait_for(pilot, lambda: "Unchanged" in screen_text(app), what="the note")
        assert "openai already uses gpt-4o" in screen_text(app)
        assert "Saved" not in screen_text(app)


async def test_the_read_only_reason_is_whole_at_80_columns(seeded_file: Path, open_app) -> None:
    reason = ("you cannot write /srv/llm/shared/config/model_selections.json (permission "
              "denied); opened read-only")
    app = open_app(seeded_file, read_only=True, read_only_reason=reason)
    async with app.run_test(size=(80, 24)) as pilot:
        await footer_text(pilot, app)
        text = " ".join(line.strip() for line in screen_text(app).splitlines()[:4])
        assert "(permission denied); opened read-only" in text


async def test_the_detail_line_and_the_row_agree_on_the_age(seeded_file: Path) -> None:
    from datetime import timedelta

    from tui_helpers import NOW

    from modelboard.core import open_store

    ticks = [NOW]
    store = open_store(seeded_file)
    app = ModelboardApp(store, clock=lambda: ticks[0], watch=False, cursor_blink=False)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            ticks[0] = NOW + timedelta(minutes=2)  # time passes; the table is not redrawn
            put_cursor_on(app, "openai")
            await pilot.pause()
            row_age = app.main.table.row_text("openai").split()[2:4]
            detail = screen_text(app).splitlines()[-2]
            assert f"set {' '.join(row_age)}" in detail, (row_age, detail)
    finally:
        store.close()
