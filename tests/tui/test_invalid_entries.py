"""Entries the proxy will not serve as stored are marked: the row, the reason and what is
served instead in the detail line, a count in the header; the marks follow live edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tui_helpers import put_cursor_on, replace_file, screen_text, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


def entry(model: str) -> dict[str, object]:
    return {"model_name": model, "editable": True, "last_updated": "2026-01-05T10:00:00+00:00",
            "updated_by": "alice@ops1"}


async def test_a_hand_typo_at_start_is_marked_and_not_served(data_file: Path, open_app) -> None:
    data_file.parent.mkdir(parents=True)
    replace_file(data_file, {"openai": entry("gpt-4oo"), "anthropic": entry("claude-sonnet-4-5")})
    app = open_app(data_file)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        table = app.main.table
        assert table.row_text("openai").split()[1:3] == ["✗", "gpt-4oo"]
        assert "✗" not in table.row_text("anthropic")
        assert "1 invalid" in screen_text(app).splitlines()[0]
        put_cursor_on(app, "openai")
        await pilot.pause()
        text = screen_text(app)
        assert "not served" in text and "the proxy serves nothing" in text
        assert app.store.get_model_selection("openai") is None  # what the proxy sees agrees


async def test_marks_follow_a_live_typo_and_its_fix(seeded_file: Path, open_app) -> None:
    good = json.loads(seeded_file.read_text())
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        table = app.main.table
        put_cursor_on(app, "openai")
        typo = {**good, "openai": {**good["openai"], "model_name": "gpt-4oo"}}
        replace_file(seeded_file, typo)
        await wait_for(pilot, lambda: "gpt-4oo" in table.row_text("openai"),
                       what="the typo on screen")
        assert "✗ gpt-4oo" in table.row_text("openai")
        await wait_for(pilot, lambda: "the proxy serves gpt-4o" in screen_text(app),
                       what="what is served instead, in the detail line")
        replace_file(seeded_file, good)
        await wait_for(pilot, lambda: "✗" not in table.row_text("openai"),
                       what="the mark gone once the entry is fixed")
        assert "not served" not in screen_text(app)
        assert table.problem_of("openai") is None


async def test_a_hand_edit_adding_an_unknown_provider_is_marked_and_not_served(
        seeded_file: Path, open_app) -> None:
    document = json.loads(seeded_file.read_text())
    document.pop("internal-gateway", None)  # the fixture's own unknown provider: ours alone
    replace_file(seeded_file, document)
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        table = app.main.table
        assert "invalid" not in screen_text(app).splitlines()[0]
        replace_file(seeded_file, {**document, "made-up-provider": entry("x")})
        await wait_for(pilot, lambda: table.problem_of("made-up-provider") is not None,
                       what="the hand edit on screen")
        assert table.row_text("made-up-provider").split()[1:3] == ["✗", "x"]
        put_cursor_on(app, "made-up-provider")
        await wait_for(pilot, lambda: "1 invalid" in screen_text(app).splitlines()[0],
                       what="the count in the header")
        await wait_for(pilot, lambda: "unknown provider" in screen_text(app).splitlines()[-2],
                       what="the reason in the detail line")
        detail = screen_text(app).splitlines()[-2]
        assert detail.split()[0] == "made-up-provider"
        assert "✗ not served, the proxy serves nothing (its default): unknown provider" in detail
        assert app.store.get_model_selection("made-up-provider") is None
