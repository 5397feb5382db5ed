"""The fleet in the editor: a header badge, a live screen of readers, and the save notice.

| key | action |
| :- | :- |
| escape, f, q | back to the table |

Every status comes from the core's one rule (``modelboard.core.fleet.judge``); this
module only shows it. Reports are read off the UI thread, once a second on the screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from modelboard.core import SelectionStore
from modelboard.core.fleet import STATUSES, Fleet, Reader, Waited, summary

from .display import clean, relative_time

__all__ = ["FLEET_POLL_SECONDS", "FleetScreen", "fleet_badge", "reached_notice"]

#: How often the header and the fleet screen read the reports again.
FLEET_POLL_SECONDS = 1.0
#: How long the notice after a save waits for every reader.
REACH_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)
_COLUMNS = (("name", "name"), ("host", "host"), ("pid", "pid"), ("revision", "revision"),
            ("loaded", "loaded"), ("status", "status"))


def fleet_badge(readers: Sequence[Reader]) -> tuple[str, bool] | None:
    """``readers 8/8 current``, or ``7/8 current · 1 behind`` and True (a warning)."""
    if not readers:
        return None
    current = sum(r.status == "current" for r in readers)
    if current == len(readers):
        return f"readers {current}/{len(readers)} current", False
    others = [f"{sum(r.status == s for r in readers)} {s}" for s in STATUSES
              if s != "current" and any(r.status == s for r in readers)]
    return " · ".join([f"{current}/{len(readers)} current", *others]), True


def reached_notice(waited: Waited) -> tuple[str, bool] | None:
    """What to say after a save: when it reached every reader, or which it did not."""
    if waited.total == 0 and not waited.laggards:
        return None
    if waited.reached:
        every = "the only reader" if waited.total == 1 else f"all {waited.total} readers"
        return f"Reached {every} in {_took(waited.seconds)}.", False
    names = ", ".join(r.label for r in waited.laggards[:4])
    more = f" and {len(waited.laggards) - 4} more" if len(waited.laggards) > 4 else ""
    noun = "reader" if waited.total == 1 else "readers"
    return (f"{waited.count} of {waited.total} {noun} after {REACH_TIMEOUT_S:.0f} s; "
            f"not reached: {names}{more}", True)


def _took(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


_STATUS_STYLE = {"current": "", "behind": "bold", "stale": "dim", "error": "bold reverse",
                 "unreadable": "italic"}


class FleetScreen(Screen[None]):
    """Every reader of the store with its status, updated in place every second."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f,q", "close", "Back", id="fleet.close",
                tooltip="Back to the table of providers"),
    ]

    HELP = ("current: serves the latest revision. behind: serves an older one. stale: no "
            "heartbeat for three intervals (hung, stopped or killed). error: it could not "
            "load the store. unreadable: a report that cannot be trusted.")

    DEFAULT_CSS = """
    FleetScreen { layout: vertical; }
    FleetScreen #fleet-summary { height: 1; padding: 0 1; background: $panel; }
    FleetScreen #fleet-summary.warning { color: $text-warning; }
    FleetScreen #fleet-table { height: 1fr; }
    """

    class Loaded(Message):
        """The reports were read (posted from the reading thread)."""

        def __init__(self, readers: list[Reader], error: Exception | None = None) -> None:
            super().__init__()
            self.readers = readers
            #: The reading failed: said in the summary line, the table keeps the last look.
            self.error = error

    def __init__(self, store: SelectionStore, *, now: Callable[[], datetime],
                 live: bool = True) -> None:
        super().__init__()
        self._fleet = Fleet(store)
        self._now = now
        self._live = live

    def compose(self) -> ComposeResult:
        yield Static("reading the reports…", id="fleet-summary")
        yield DataTable(id="fleet-table", cursor_type="row", zebra_stripes=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one("#fleet-table", DataTable)
        for label, key in _COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self._read()
        if self._live:
            self.set_interval(FLEET_POLL_SECONDS, self._read, name="fleet")

    @work(thread=True, exclusive=True, group="fleet-screen", exit_on_error=False)
    def _read(self) -> None:
        try:
            readers = self._fleet.readers()
        except Exception as error:  # said on screen; the next interval reads again
            self.post_message(self.Loaded([], error))
            return
        self.post_message(self.Loaded(readers))

    @on(Loaded)
    def _show(self, message: Loaded) -> None:
        if message.error is not None:
            log.error("the fleet screen could not read the reports", exc_info=message.error)
            again = f"; reading them again in {FLEET_POLL_SECONDS:.0f} s" if self._live else ""
            line = self.query_one("#fleet-summary", Static)
            line.update(Text(clean(f"⚠ could not read the readers' reports: "
                                   f"{type(message.error).__name__}: {message.error}{again}")))
            line.set_class(True, "warning")
            return
        readers = message.readers
        table: DataTable[Text] = self.query_one("#fleet-table", DataTable)
        wanted = {r.key: self._cells(r) for r in readers}
        with self.app.batch_update():
            for row in [k for k in table.rows if k.value not in wanted]:
                table.remove_row(row)
            for key, cells in wanted.items():
                if key not in table.rows:
                    table.add_row(*cells, key=key)
                    continue
                for (_label, column), cell in zip(_COLUMNS, cells, strict=True):
                    if table.get_cell(key, column) != cell:
                        table.update_cell(key, column, cell)
        badge = fleet_badge(readers)
        line = self.query_one("#fleet-summary", Static)
        line.update(Text(summary(readers) + ("" if readers else "; no watching store "
                                             "has reported yet")))
        line.set_class(bool(badge and badge[1]), "warning")

    def _cells(self, reader: Reader) -> tuple[Text, ...]:
        style = _STATUS_STYLE[reader.status]
        status = Text(clean(reader.describe(now=self._now())), style=style)
        report = reader.report
        if report is None:
            return (Text(clean(reader.key.rsplit("/", 1)[-1])), Text("-"), Text("-"),
                    Text("-"), Text("-"), status)
        return (Text(clean(report.name)), Text(clean(report.host)), Text(str(report.pid)),
                Text(report.revision[:12]),
                Text(relative_time(report.loaded_at, self._now())), status)

    def action_close(self) -> None:
        self.dismiss(None)
