"""The edit dialog under a storm: another process rewrites the file every 50 ms while the
operator types and saves, fifty times. Every save must be exactly what was typed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual import events
from tui_helpers import wait_for

from modelboard.tui import ModelboardApp
from modelboard.tui.dialogs import ConflictScreen, ModelPicker

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(600)]

ATTEMPTS = 50
#: Full names: each is its own best match, so the highlight and the typed text agree.
TYPED = ("o3", "gpt-4.1", "o4-mini", "gpt-4o-mini", "gpt-5-nano", "o1", "gpt-4-turbo")

_STORM = """
import sys, time
from modelboard.core import open_store
store = open_store(sys.argv[1], actor='bob@storm')
google = ['gemini-2.5-flash', 'gemini-2.0-flash', 'gemini-1.5-pro']
openai = ['gpt-5', 'gpt-5-mini']
n = 0
while True:
    n += 1
    try:
        if n % 5 == 0:   # now and then the provider being edited itself changes
            store.set_model_selection('openai', openai[n % 2])
        else:            # otherwise others: live reloads while the dialog is open
            store.set_model_selection('google', google[n % 3])
    except Exception as error:
        print(error, file=sys.stderr)
    time.sleep(0.05)
"""


@pytest.fixture
def storm(seeded_file: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process writing the file every 50 ms until the test ends."""
    writer = subprocess.Popen([sys.executable, "-c", _STORM, str(seeded_file)], text=True,
                              stderr=subprocess.PIPE)
    try:
        yield writer
    finally:
        writer.kill()
        writer.wait(timeout=10)


def send_keys(app: ModelboardApp, *keys: str) -> None:
    """Queue keys the way a terminal delivers a script's keystrokes: all at once, none
    waiting for the screen (``Pilot.press`` waits for the app to be idle between keys,
    which a storm of changes never lets it be)."""
    for key in keys:
        character = key if len(key) == 1 else None
        app.post_message(events.Key(key, character))


def my_saves(path: Path) -> list[str]:
    """The models this editor's actor saved, in order, from the history file."""
    history = path.with_name("model_selections.history.jsonl")
    # The storm may be appending right now: a last line without its newline is unfinished.
    whole = history.read_text().split("\n")[:-1]
    lines = [json.loads(line) for line in whole if line.strip()]
    return [line["new"] for line in lines
            if line.get("actor") == "tester@host" and line.get("action") == "set"]


async def test_every_save_under_a_storm_is_the_typed_model(
        seeded_file: Path, open_app, storm: subprocess.Popen[str]) -> None:
    app = open_app(seeded_file, watch=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.watching, what="the watcher")
        await wait_for(pilot, lambda: app.main.table.selection_of("google").updated_by
                       == "bob@storm", what="the storm to reach the table")
        table = app.main.table
        typed: list[str] = []
        conflicts = 0
        for attempt in range(ATTEMPTS):
            model = TYPED[attempt % len(TYPED)]
            table.move_cursor(row=table.get_row_index("openai"))
            before = len(my_saves(seeded_file))
            # Keys as a script sends them: none waits for the dialog to appear.
            send_keys(app, "e", "ctrl+u", *model, "enter")
            typed.append(model)

            def settled(before: int = before) -> bool:
                if isinstance(app.screen, ConflictScreen):
                    return bool(app.screen.query("#conflict-mine"))  # composed
                return app.screen is app.main and not app.main.saving and \
                    len(my_saves(seeded_file)) > before

            await wait_for(pilot, settled, timeout=20, what=f"save {attempt} of {model}")
            while isinstance(app.screen, ConflictScreen):
                # Mine is shown as typed; overwriting is the operator's choice (it may
                # conflict again: the storm goes on).
                mine = app.screen.query_one("#conflict-mine").render()
                assert str(mine).split()[1] == model, str(mine)
                conflicts += 1
                await pilot.press("o")
                await wait_for(pilot, settled, timeout=20, what=f"the overwrite of {model}")
            assert not isinstance(app.screen, ModelPicker)
        assert my_saves(seeded_file)[-ATTEMPTS:] == typed
        assert conflicts  # the provider being edited changed during some edits
    assert storm.poll() is None  # the writer ran the whole time
