"""The editor, read-only, on a store in Redis: live changes and an outage on screen."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis_server import RedisServer

from modelboard.core import open_store
from modelboard.tui import ModelboardApp

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

_TEXT = re.compile(r"<text [^>]*>(.*?)</text>")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def screen_text(app: ModelboardApp) -> str:
    """The words on screen (the SVG export's text runs, in order)."""
    runs = _TEXT.findall(app.export_screenshot())
    return " ".join(html.unescape(run).replace("\xa0", " ") for run in runs)


async def wait_for(pilot: Any, condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def write_in_another_process(url: str, code: str) -> None:
    script = ("import sys\nfrom modelboard.core import open_store\n"
              "store = open_store(sys.argv[1], actor='mallory@elsewhere')\n" + code)
    done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


async def test_read_only_editor_on_redis_shows_changes_live(redis_server: RedisServer,
                                                            redis_url: str,
                                                            redis_key: str) -> None:
    open_store(redis_url).set_model_selection("openai", "gpt-4o")
    store = open_store(redis_url, read_only=True)
    before = {key: redis_server.client().dump(key)
              for key in redis_server.client().keys(f"{redis_key}:*")}
    app = ModelboardApp(store, read_only_reason="opened with --read-only", cursor_blink=False)
    try:
        async with app.run_test(size=(100, 24)) as pilot:
            await wait_for(pilot, lambda: store.watching, "the watcher")
            assert "gpt-4o" in screen_text(app)
            await asyncio.to_thread(write_in_another_process, redis_url,
                                    "store.set_model_selection('openai', 'gpt-5')")
            await wait_for(pilot, lambda: "gpt-5" in screen_text(app), "the change")
            assert app.main.table.selection_of("openai").updated_by == "mallory@elsewhere"
    finally:
        store.close()
    after = {key: redis_server.client().dump(key)
             for key in redis_server.client().keys(f"{redis_key}:*")}
    assert set(after) == set(before)  # the editor added no key (no copy, no lock)


async def test_editor_keeps_the_table_while_redis_is_down(own_redis_server: RedisServer) -> None:
    server = own_redis_server.start()
    url = server.url("fleet")
    open_store(url).set_model_selection("openai", "gpt-4o")
    store = open_store(url, read_only=True)
    app = ModelboardApp(store, cursor_blink=False)
    try:
        async with app.run_test(size=(100, 24)) as pilot:
            await wait_for(pilot, lambda: store.watching, "the watcher")
            await asyncio.to_thread(server.kill)
            await wait_for(pilot, lambda: "cannot reach Redis" in screen_text(app), "the banner")
            assert "gpt-4o" in screen_text(app)
            await asyncio.to_thread(server.start)
            await wait_for(pilot, lambda: "cannot reach Redis" not in screen_text(app),
                           "the banner to go")
            await asyncio.to_thread(write_in_another_process, url,
                                    "store.set_model_selection('openai', 'gpt-5')")
            await wait_for(pilot, lambda: "gpt-5" in screen_text(app), "the change")
    finally:
        store.close()


async def test_a_typed_edit_survives_a_redis_outage(own_redis_server: RedisServer,
                                                    redis_key: str) -> None:
    """Redis gone at Enter: the dialog comes back with what was typed and why; once Redis
    is back, Enter saves exactly that."""
    from modelboard.tui.dialogs import ModelPicker

    server = own_redis_server.start()
    url = server.url(redis_key)
    open_store(url).set_model_selection("openai", "gpt-4o")
    store = open_store(url, actor="tester@host", report=False)
    app = ModelboardApp(store, cursor_blink=False, watch=False)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.main.table.row_count, "the table")
            table = app.main.table
            table.move_cursor(row=table.get_row_index("openai"))
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker), "the picker")
            await pilot.press("ctrl+u", *"gpt-5")
            server.stop()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker)
                           and "not saved" in screen_text(app).lower(), "the refusal")
            assert app.screen.query_one("#model-filter").value == "gpt-5"
            server.start()
            await pilot.press("enter")  # retry, Redis back
            check = open_store(url, report=False)
            try:
                await wait_for(pilot, lambda: app.screen is app.main and not app.main.saving
                               and check.reload().get("openai") is not None
                               and check.reload()["openai"].model_name == "gpt-5",
                               "the retried save")
            finally:
                check.close()
    finally:
        store.close()


async def test_with_redis_down_the_editor_says_changes_wait_for_the_store(
        own_redis_server: RedisServer, redis_key: str) -> None:
    """The store's wording, not the file's: in the banner and in why a key does nothing."""
    server = own_redis_server.start()
    url = server.url(redis_key)
    open_store(url).set_model_selection("openai", "gpt-4o")
    store = open_store(url, actor="tester@host", report=False)
    app = ModelboardApp(store, cursor_blink=False)
    try:
        async with app.run_test(size=(160, 30), notifications=True) as pilot:
            await wait_for(pilot, lambda: store.watching, "the watcher")
            table = app.main.table
            table.move_cursor(row=table.get_row_index("openai"))
            await asyncio.to_thread(server.kill)
            await wait_for(pilot, lambda: "cannot reach Redis" in screen_text(app), "the banner")
            assert "changes wait until the store is back" in screen_text(app)
            await pilot.press("e")
            await wait_for(pilot, lambda: "Cannot edit" in screen_text(app), "the refusal")
            said = app.main.why_not("edit")
            assert said == f"{url} cannot be read; changes wait until the store is back"
            assert "fixed" not in screen_text(app)
    finally:
        store.close()
