"""The fleet in the editor: the header badge, the live fleet screen, the notice after a save."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_readers import reader_processes
from textual.widgets import DataTable
from tui_helpers import FIXTURES, fixed_clock, screen_text, wait_for

from modelboard.core import SelectionStore, open_store
from modelboard.core.fleet import Fleet, Reader, Waited
from modelboard.tui import ModelboardApp, fleet
from modelboard.tui.fleet import FleetScreen, reached_notice
from modelboard.tui.screen import PendingChange
from modelboard.tui.screenshots import write_demo_fleet

pytestmark = pytest.mark.timeout(120)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
LOCATION = "config/model_selections.json"


@pytest.fixture
def demo_fleet_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelboardApp]:
    """The fixture file with eight demo readers beside it: each status shown once."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR")
    (tmp_path / "config").mkdir()
    shutil.copy(FIXTURES / "selections.json", tmp_path / LOCATION)
    shutil.copy(FIXTURES / "model_selections.history.jsonl",
                tmp_path / "config" / "model_selections.history.jsonl")
    store = open_store(LOCATION, actor="tester@host")
    write_demo_fleet(Path(LOCATION), store.snapshot.revision, fixed_clock())
    yield ModelboardApp(store, clock=fixed_clock, watch=False, cursor_blink=False)
    store.close()


@pytest.mark.parametrize("size", SIZES)
def test_fleet_screen(snap_compare: Any, demo_fleet_app: ModelboardApp, size: Any) -> None:
    async def open_fleet(pilot: Any) -> None:
        await wait_for(pilot, lambda: pilot.app.main.is_mounted
                       and pilot.app.main.table.row_count)
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, FleetScreen)
                       and pilot.app.screen.query_one("#fleet-table").row_count == 8)

    assert snap_compare(demo_fleet_app, terminal_size=size, run_before=open_fleet)


@contextlib.asynccontextmanager
async def editor_over_three_readers(
        seeded_file: Path) -> AsyncIterator[tuple[list[Any], ModelboardApp, Any]]:
    """Three real reader processes on ``seeded_file`` and an editor that sees them all."""
    with reader_processes(str(seeded_file), ["proxy-a", "proxy-b", "proxy-c"]) as readers:
        # Opened as the editor opens it: it shows the fleet, it is not part of it.
        store: SelectionStore = open_store(seeded_file, actor="tester@host", report=False)
        app = ModelboardApp(store, clock=fixed_clock, watch=True, cursor_blink=False)
        try:
            async with app.run_test(size=(120, 30), notifications=True) as pilot:
                await wait_for(pilot, lambda: "readers 3/3 current" in screen_text(app),
                               timeout=20, what="the fleet in the header")
                yield readers, app, pilot
        finally:
            store.close()


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_editor_shows_real_readers_and_whether_a_save_reached_them(
        seeded_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "REACH_TIMEOUT_S", 1.5)
    async with editor_over_three_readers(seeded_file) as (readers, app, pilot):
        # A save reaches every reader, and the editor says so.
        app.main.save(PendingChange("set", "openai", "gpt-4.1"))
        await wait_for(pilot, lambda: "Reached all 3 readers in" in screen_text(app),
                       timeout=20, what="the reached notice")

        readers[1].send("stop-watching")
        readers[2].pause()
        app.main.save(PendingChange("set", "openai", "gpt-4o-mini"))
        await wait_for(pilot, lambda: "1 of 2 readers after 2 s; not" in screen_text(app)
                       and "proxy-b (" in screen_text(app),
                       timeout=20, what="the not-reached notice")
        await wait_for(pilot, lambda: "1/3 current · 1 behind · 1 stale"
                       in screen_text(app), timeout=20, what="the warning badge")

        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        await wait_for(pilot, lambda: "3 readers: 1 current, 1 behind, 1 stale"
                       in screen_text(app), timeout=10, what="the fleet screen")
        text = screen_text(app)
        assert "behind by 1 change" in text and "stale (no heartbeat" in text
        readers[2].resume()  # it catches up, and the screen shows it live
        await wait_for(pilot, lambda: "3 readers: 2 current, 1 behind"
                       in screen_text(app), timeout=20, what="the resumed reader")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FleetScreen))


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_editor_shows_a_killed_reader_as_stale_and_does_not_wait_for_it(
        seeded_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "REACH_TIMEOUT_S", 5)
    async with editor_over_three_readers(seeded_file) as (readers, app, pilot):
        killed = readers[1]
        killed.kill()  # SIGKILL: no close(), its report stays where it was
        await wait_for(pilot, lambda: "2/3 current · 1 stale" in screen_text(app),
                       timeout=20, what="the killed reader in the header")
        # A save reaches the two live readers; the dead one is not waited for.
        app.main.save(PendingChange("set", "openai", "gpt-4.1"))
        await wait_for(pilot, lambda: "Reached all 2 readers in" in screen_text(app),
                       timeout=20, what="the reached notice")

        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        await wait_for(pilot, lambda: "3 readers: 2 current, 1 stale"
                       in screen_text(app), timeout=10, what="the fleet screen")
        table = app.screen.query_one("#fleet-table", DataTable)
        rows = {str(table.get_row(key)[2]): str(table.get_row(key)[5])
                for key in table.rows}
        assert rows[str(killed.pid)].startswith("stale (no heartbeat for ")
        assert [rows[str(r.pid)] for r in (readers[0], readers[2])] == ["current"] * 2


def test_the_notice_after_a_save_counts_one_reader_as_one() -> None:
    alone = Waited(reached=True, seconds=0.042, count=1, total=1, laggards=[])
    assert reached_notice(alone) == ("Reached the only reader in 42 ms.", False)
    many = Waited(reached=True, seconds=1.5, count=8, total=8, laggards=[])
    assert reached_notice(many) == ("Reached all 8 readers in 1.5 s.", False)
    missed = Waited(reached=False, seconds=10.0, count=0, total=1, laggards=[])
    assert reached_notice(missed) == ("0 of 1 reader after 10 s; not reached: ", True)


class Outage:
    """Reads of the readers' reports fail (as when Redis is gone) until ``end()``.

    Failing until the test has seen the failure, rather than once, keeps a busy machine
    from replacing the message by the next read before the test looks. ``reads`` counts
    the reads, to wait for one after the outage."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        self.over_at: int | None = None
        real = Fleet.readers

        def readers(fleet: Fleet, *, confirm: bool = False) -> list[Reader]:
            self.reads += 1
            if self.over_at is None:
                raise ConnectionError("Connection refused by the server")
            return real(fleet, confirm=confirm)

        monkeypatch.setattr(Fleet, "readers", readers)

    def end(self) -> None:
        self.over_at = self.reads

    def read_since_end(self) -> bool:
        return self.over_at is not None and self.reads > self.over_at


@pytest.mark.anyio
async def test_a_failed_read_of_the_reports_is_said_in_the_banner_and_read_again(
        seeded_file: Path, open_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    outage = Outage(monkeypatch)
    app = open_app(seeded_file, watch=True)
    said = ("⚠ the editor could not read the readers' reports: ConnectionError: Connection "
            "refused by the server; reading them again in 2 s")
    async with app.run_test(size=(160, 30)) as pilot:
        fault = app.main.query_one("#fault")
        await wait_for(pilot, lambda: said in screen_text(app), what="the fault line")
        outage.end()
        await wait_for(pilot, lambda: outage.read_since_end() and not fault.display,
                       timeout=10, what="the next read, and the fault line gone")
        await pilot.press("s")  # the editor goes on as before
        await wait_for(pilot, lambda: "sort: model" in screen_text(app),
                       what="the editor answering keys")
        assert app.is_running


@pytest.mark.anyio
async def test_the_fleet_screen_says_a_failed_read_and_reads_again(
        seeded_file: Path, open_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    outage = Outage(monkeypatch)
    app = open_app(seeded_file)  # not watching: only the fleet screen reads the reports
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.main.table.row_count, what="the table")
        await pilot.press("f")
        await wait_for(pilot, lambda: "could not read the readers' reports: ConnectionError"
                       in screen_text(app), what="the failure in the summary line")
        outage.end()
        await wait_for(pilot, lambda: outage.read_since_end()
                       and "no watching store has reported yet" in screen_text(app),
                       timeout=10, what="the next read")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FleetScreen))
