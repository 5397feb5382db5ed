"""The editor's fleet view on one real Redis server, with real reader processes."""

from __future__ import annotations

import pytest
from fleet_readers import reader_processes
from test_redis_editor import screen_text, wait_for

from modelboard.core import SelectionStore, open_store
from modelboard.tui import ModelboardApp, fleet
from modelboard.tui.fleet import FleetScreen
from modelboard.tui.screen import PendingChange

pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(120)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_editor_shows_readers_on_redis_current_behind_stale_and_killed(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "REACH_TIMEOUT_S", 1.0)
    open_store(redis_url, actor="deployer").set_model_selection("openai", "gpt-4o")
    names = ["proxy-a", "proxy-b", "proxy-c", "proxy-d"]
    with reader_processes(redis_url, names) as readers:
        store: SelectionStore = open_store(redis_url, actor="tester@host", report=False)
        app = ModelboardApp(store, watch=True, cursor_blink=False)
        try:
            async with app.run_test(size=(120, 30), notifications=True) as pilot:
                await wait_for(pilot, lambda: "readers 4/4 current" in screen_text(app),
                               "the fleet in the header")
                app.main.save(PendingChange("set", "openai", "gpt-4.1"))
                await wait_for(pilot, lambda: "Reached all 4 readers in" in screen_text(app),
                               "the reached notice")

                deaf, stopped, killed = readers[1], readers[2], readers[3]
                deaf.send("stop-watching")
                stopped.pause()
                killed.kill()
                await wait_for(pilot, lambda: "2/4 current · 2 stale" in screen_text(app),
                               "the stopped and the killed reader in the header")
                app.main.save(PendingChange("set", "openai", "gpt-4o-mini"))
                await wait_for(pilot, lambda: "1 of 2 readers after 1 s; not reached: "
                               "proxy-b (" in screen_text(app), "the not-reached notice")
                await wait_for(pilot, lambda: "1/4 current · 1 behind · 2 stale"
                               in screen_text(app), "the warning badge")

                await pilot.press("f")
                await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen),
                               "the fleet screen")
                await wait_for(pilot, lambda: "4 readers: 1 current, 1 behind, 2 stale"
                               in screen_text(app), "the readers on the fleet screen")
                text = screen_text(app)
                assert "behind by 1 change" in text and "stale (no heartbeat" in text
                stopped.resume()  # it catches up from Redis, and the screen shows it live
                await wait_for(pilot, lambda: "4 readers: 2 current, 1 behind, 1 stale"
                               in screen_text(app), "the resumed reader")
                await pilot.press("escape")
                await wait_for(pilot, lambda: not isinstance(app.screen, FleetScreen),
                               "the table again")
        finally:
            store.close()
