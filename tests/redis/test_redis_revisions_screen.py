"""The editor's revisions screen on a store in Redis, against a real redis-server: the log,
a diff, a rollback confirmed with y and one refused because another process wrote first."""

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
from modelboard.tui.revisions import DiffScreen, RevisionsScreen, RollbackConfirm

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

_TEXT = re.compile(r"<text [^>]*>(.*?)</text>")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def words(app: ModelboardApp) -> str:
    """The words on screen (the SVG export's text runs), borders dropped, on one line."""
    runs = _TEXT.findall(app.export_screenshot())
    text = " ".join(html.unescape(run).replace("\xa0", " ") for run in runs)
    return " ".join(text.translate(str.maketrans({"│": " ", "▌": " "})).split())


async def wait_for(pilot: Any, condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def write_in_another_process(url: str, code: str) -> None:
    script = ("import sys\nfrom modelboard.core import open_store\n"
              "store = open_store(sys.argv[1], actor='mallory@elsewhere', report=False)\n"
              + code)
    done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def models(url: str) -> dict[str, str]:
    check = open_store(url, report=False)
    try:
        return check.snapshot.models()
    finally:
        check.close()


async def open_rollback(pilot: Any, app: ModelboardApp, number: int) -> None:
    await wait_for(pilot, lambda: app.main.table.row_count, "the table")
    await pilot.press("v")
    await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen)
                   and app.screen.table.row_count, "the revisions")
    screen = app.screen
    assert isinstance(screen, RevisionsScreen)
    screen.table.move_cursor(row=screen.table.get_row_index(str(number)))
    await pilot.pause()
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, RollbackConfirm), "the question")


async def test_log_diff_and_rollback_on_redis(redis_url: str) -> None:
    writer = open_store(redis_url, actor="alice@ops", report=False)
    writer.set_model_selection("openai", "gpt-4o", reason="launch")
    writer.set_model_selection("openai", "gpt-4.1", reason="try 4.1")
    writer.close()
    store = open_store(redis_url, actor="tester@host", report=False)
    app = ModelboardApp(store, cursor_blink=False, watch=False)
    try:
        async with app.run_test(size=(120, 30), notifications=True) as pilot:
            await wait_for(pilot, lambda: app.main.table.row_count, "the table")
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen)
                           and app.screen.table.row_count == 2, "the revisions")
            assert "openai: gpt-4o -> gpt-4.1 (try 4.1)" in words(app)
            screen = app.screen
            screen.table.move_cursor(row=screen.table.get_row_index("1"))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen)
                           and "1 provider changed since revision 1" in words(app), "the diff")
            assert re.search(r"openai gpt-4o -> gpt-4\.1", words(app))
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen), "back")
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, RollbackConfirm),
                           "the question")
            await pilot.press("y")
            await wait_for(pilot, lambda: models(redis_url) == {"openai": "gpt-4o"},
                           "the rollback in Redis")
            await wait_for(pilot, lambda: "rolled back to revision 1 as revision 3"
                           in words(app), "the notice")
    finally:
        store.close()
    assert open_store(redis_url, report=False).revisions(limit=1)[0].reason == "rollback to 1"


async def test_a_write_before_y_is_not_overwritten_on_redis(redis_url: str) -> None:
    writer = open_store(redis_url, actor="alice@ops", report=False)
    writer.set_model_selection("openai", "gpt-4o")
    writer.set_model_selection("openai", "gpt-4.1")
    writer.close()
    store = open_store(redis_url, actor="tester@host", report=False)
    app = ModelboardApp(store, cursor_blink=False, watch=False)
    try:
        async with app.run_test(size=(120, 30), notifications=True) as pilot:
            await open_rollback(pilot, app, 1)
            await asyncio.to_thread(write_in_another_process, redis_url,
                                    "store.set_model_selection('openai', 'o3')")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, RollbackConfirm)
                           and "changed since you confirmed: openai: changed by "
                           "mallory@elsewhere to 'o3'" in words(app), "the question again")
            assert models(redis_url) == {"openai": "o3"}
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, RevisionsScreen), "cancelled")
    finally:
        store.close()
    assert models(redis_url) == {"openai": "o3"}


async def test_a_tampered_stream_shows_the_banner_naming_the_entry(
        redis_url: str, redis_server: RedisServer, redis_key: str) -> None:
    writer = open_store(redis_url, actor="alice@ops", report=False)
    for model in ("gpt-4o", "gpt-4.1", "o3"):
        writer.set_model_selection("openai", model)
    writer.close()
    store = open_store(redis_url, actor="tester@host", report=False)
    app = ModelboardApp(store, cursor_blink=False, watch=True)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: store.watching, "the watcher")
            await wait_for(pilot, lambda: not app.main._checking_history, "the first walk")
            assert "does not verify" not in words(app)
            client = redis_server.client()
            ((second, _fields),) = client.xrange(f"{redis_key}:history", "-", "+")[1:2]
            client.xdel(f"{redis_key}:history", second)  # an entry deleted by hand
            await asyncio.to_thread(write_in_another_process, redis_url,
                                    "store.set_model_selection('google', 'gemini-2.5-pro')")
            await wait_for(pilot, lambda: f"the history does not verify: {redis_key}:history "
                           "line 2:" in words(app), "the banner")
            assert "(entry 2, stream id" in words(app)
    finally:
        store.close()
