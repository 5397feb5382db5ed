"""The main view: every provider's model, with the keys that change them.

| key | action |
| :- | :- |
| enter, e | edit the highlighted provider's model |
| l | lock or unlock it (asks, with an optional reason) |
| d | remove its selection (asks) |
| space | mark or unmark the row |
| b | set one model on every marked row (review, then all or nothing) |
| h | its history; an older model can be restored |
| / | filter rows (enter keeps the filter, escape clears it) |
| s | cycle the sort order |
| f | the fleet: every reader process and the revision it serves |
| v | the revisions: every write, newest first; diff against now; roll back |
| ? | help |
| ctrl+p | command palette |
| q | quit |

Which of these are shown, shown disabled or hidden is decided in ``check_action``
alone (read-only mode, a locked row, a bad file on disk). A line under the header says
when the history's hash chain does not verify (checked at start and after every change).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.widgets import Footer, Input, Static

from modelboard.core import (
    UNSET,
    ChangeEvent,
    ConfigurationError,
    ConflictError,
    EntryProblem,
    LockedError,
    ModelboardError,
    Operation,
    ProviderChange,
    Rollback,
    RollbackPlan,
    SelectionStore,
    ValidationError,
    Verification,
)
from modelboard.core.errors import describe_lock
from modelboard.core.fleet import Fleet, Reader, Waited

from .dialogs import (
    BulkReview,
    BulkRow,
    ConfirmDialog,
    ConflictChoice,
    ConflictScreen,
    HelpScreen,
    HistoryScreen,
    LockDialog,
    LockRequest,
    ModelPicker,
)
from .display import DASH, clean, relative_time, safe_text, short_actor
from .fleet import FLEET_POLL_SECONDS, REACH_TIMEOUT_S, FleetScreen, fleet_badge, reached_notice
from .revisions import RevisionsScreen
from .table import SORT_ORDERS, ColumnWidths, SelectionTable

__all__ = ["MainScreen", "PendingChange"]

log = logging.getLogger(__name__)

#: Actions that write; read-only mode hides them everywhere (keys, footer, palette, help).
WRITE_ACTIONS = frozenset({"edit", "lock", "unlock", "remove", "mark", "unmark_all", "bulk",
                           "explain"})
#: Actions that wait while the file on disk cannot be loaded.
WAIT_FOR_GOOD_FILE = frozenset({"edit", "lock", "unlock", "remove", "bulk"})
#: Actions that open a dialog from the table (priority keys: see BINDINGS).
OPENS_A_DIALOG = frozenset({"edit", "lock", "unlock", "remove", "bulk", "history",
                            "revisions"})
AGE_REFRESH_SECONDS = 15.0
#: How long the live view waits before watching again after the watch itself failed.
FOLLOW_RESTART_SECONDS = 1.0
#: Changes from elsewhere arriving this close together make one note.
ANNOUNCE_SECONDS = 0.3
#: After a walk of the history's chain, the next waits this many times as long.
HISTORY_WALK_PAUSE = 9.0


@dataclass(frozen=True, slots=True)
class PendingChange:
    """A change the operator asked for, not yet stored; kept until it is, or dropped on purpose.

    ``expect`` is the model the operator saw when starting (so a change made meanwhile by
    someone else is a conflict, not silently overwritten); ``bulk`` maps provider ->
    (old, new) for a bulk change; ``plan`` is the rollback the operator confirmed.
    """

    kind: Literal["set", "remove", "lock", "unlock", "bulk", "rollback"]
    provider: str = ""
    model: str | None = None
    expect: Any = UNSET
    reason: str | None = None
    bulk: Mapping[str, tuple[str | None, str]] = field(default_factory=dict)
    plan: RollbackPlan | None = None

    def describe(self) -> str:
        if self.kind == "rollback":
            assert self.plan is not None
            return f"rollback to revision {self.plan.target}"
        if self.kind == "bulk":
            return f"{len(self.bulk)} providers set to {next(iter(self.bulk.values()))[1]}"
        operation = Operation(self.kind, self.provider, self.model, self.reason)
        return f"{self.provider}: {operation.describe()}"  # the core words it

    def providers(self) -> list[str]:
        if self.plan is not None:
            return self.plan.providers()
        return list(self.bulk) if self.kind == "bulk" else [self.provider]


def write_change(store: SelectionStore, change: PendingChange) -> Rollback | None:
    """Store ``change``; raises what the core raises (conflicts, locks, validation).

    Returns what a rollback did (None for the other kinds).
    """
    expect: dict[str, Any] = {} if change.expect is UNSET else {"expect": change.expect}
    if change.kind == "rollback":
        assert change.plan is not None
        # The core refuses (ConflictError) if the store moved so that this rollback would
        # now write or keep anything else than what the operator confirmed.
        return store.rollback(change.plan.target, planned=change.plan)
    if change.kind == "set":
        assert change.model is not None
        store.set_model_selection(change.provider, change.model, **expect)
    elif change.kind == "remove":
        store.remove_model_selection(change.provider, **expect)
    elif change.kind == "lock":
        store.lock(change.provider, reason=change.reason)
    elif change.kind == "unlock":
        store.unlock(change.provider)
    else:
        with store.transaction() as tx:
            for provider, (old, new) in change.bulk.items():
                tx.set_model_selection(provider, new, expect=old)
    return None


class MainCommands(Provider):
    """The command palette: every action of the main view that is available right now."""

    def _commands(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        if not isinstance(screen, MainScreen):
            return []
        return screen.available_commands()

    def _run(self, action: str) -> None:
        self.screen.post_message(MainScreen.CommandChosen(action))

    async def discover(self) -> Hits:
        for action, title, help_text in self._commands():
            yield DiscoveryHit(title, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action, title, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self._run, action),
                          text=title, help=help_text)


class FilterInput(Input):
    """The filter line: typing narrows the rows, enter keeps it, escape clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", id="filter.clear",
                tooltip="Clear the filter and show every row"),
    ]

    class Cleared(Message):
        """The operator asked for every row again."""

    def __init__(self, *, table: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._table = table

    def _back_to_table(self) -> None:
        # Focus moves now, not when a message is handled: a key typed right after
        # enter or escape is for the table, never one more letter of the filter.
        self.screen.set_focus(self.screen.query_one(self._table))

    async def action_submit(self) -> None:
        self._back_to_table()
        await super().action_submit()

    def action_clear_filter(self) -> None:
        self._back_to_table()
        self.value = ""
        self.post_message(self.Cleared())


class MainScreen(Screen[None]):
    """The table of providers; see the module docstring for its keys."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {MainCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        # The keys that open a dialog are priority bindings: the dialog is up, with the
        # focus in it, before the next key is dispatched, so keys typed ahead (a script,
        # a fast typist, a busy screen) land in the dialog instead of being lost.
        Binding("e", "edit", "Edit", id="edit", priority=True,
                tooltip="Choose the highlighted provider's model"),
        Binding("enter", "edit", "Edit", id="edit.enter", priority=True, show=False,
                tooltip="Same as e (or click the highlighted row)"),
        Binding("e", "explain('edit')", "Why not", show=False, system=True, id="edit.why"),
        Binding("l", "lock", "Lock", id="lock", priority=True,
                tooltip="Lock the selection, with an optional reason"),
        Binding("l", "unlock", "Unlock", id="unlock", priority=True,
                tooltip="Unlock the selection; asks first"),
        Binding("l", "explain('lock')", "Why not", show=False, system=True, id="lock.why"),
        Binding("d", "remove", "Remove", id="remove", priority=True,
                tooltip="Remove the selection; asks first"),
        Binding("d", "explain('remove')", "Why not", show=False, system=True, id="remove.why"),
        Binding("space", "mark", "Mark", id="mark", key_display="spc",
                tooltip="Mark or unmark the row for a bulk change"),
        Binding("u", "unmark_all", "Unmark all", id="unmark-all", show=False,
                tooltip="Unmark every marked row, shown or filtered out"),
        Binding("b", "bulk", "Bulk", id="bulk", priority=True,
                tooltip="Set one model on every marked row, after a review"),
        Binding("b", "explain('bulk')", "Why not", show=False, system=True, id="bulk.why"),
        Binding("h", "history", "History", id="history", priority=True,
                tooltip="Past changes; restore an older model"),
        Binding("slash", "filter", "Filter", id="filter", key_display="/",
                tooltip="Narrow the rows; enter keeps, escape clears"),
        Binding("s", "sort", "Sort", id="sort", show=False,
                tooltip="Cycle the order: provider, model, last updated"),
        Binding("f", "fleet", "Fleet", id="fleet", show=False,
                tooltip="Every reader process and the revision it serves, live"),
        Binding("v", "revisions", "Revisions", id="revisions", show=False,
                tooltip="Every write, newest first: its diff against now; roll back to it"),
        Binding("question_mark", "help", "Help", id="help", key_display="?",
                tooltip="Every key and what it does"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter",
                tooltip="Show every row again"),
    ]

    HELP = (
        "Marked rows (●) are what b changes. Locked rows are dimmed and cannot be edited "
        "or removed until unlocked. Changes from elsewhere appear as they happen; a change "
        "to what you are editing asks before overwriting. Mouse: click a row to move "
        "there, click it again to edit, click a column title to sort by it."
    )

    class CommandChosen(Message):
        """A command palette hit: run this action of the main view."""

        def __init__(self, action: str) -> None:
            super().__init__()
            self.action = action

    class FleetRead(Message):
        """The readers' reports were read (for the header), or a save reached them."""

        def __init__(self, readers: list[Reader], waited: Waited | None = None,
                     error: Exception | None = None) -> None:
            super().__init__()
            self.readers = readers
            self.waited = waited
            #: The reading failed (the readers are then empty and mean nothing).
            self.error = error

    class Saved(Message):
        """A change was stored (posted from the saving thread)."""

        def __init__(self, change: PendingChange, *, unchanged: bool = False,
                     rollback: Rollback | None = None) -> None:
            super().__init__()
            self.change = change
            self.unchanged = unchanged
            self.rollback = rollback

    class HistoryChecked(Message):
        """The history's chain was walked (posted from the checking thread)."""

        def __init__(self, result: Verification | None, error: Exception | None,
                     seconds: float) -> None:
            super().__init__()
            self.result = result
            self.error = error
            self.seconds = seconds

    class SaveFailed(Message):
        """A change was refused or could not be written; nothing of it was stored."""

        def __init__(self, change: PendingChange, error: Exception) -> None:
            super().__init__()
            self.change = change
            self.error = error

    def __init__(self, store: SelectionStore, *, clock: Callable[[], datetime],
                 read_only_reason: str | None = None, watch: bool = True) -> None:
        super().__init__()
        self.store = store
        self.clock = clock
        self.read_only = store.read_only
        self.read_only_reason = read_only_reason
        self.follow_changes = watch  # not ``watch``: that is Textual's DOMNode.watch()
        self._saves_in_flight = 0
        self.quit_when_saved = False
        self._lines: dict[str, Text] = {}
        self._fleet = Fleet(store)
        self._fleet_badge: tuple[str, bool] | None = None
        self._fault_from_fleet = False  # the fault line shows a failed read of the reports
        self._unannounced: list[ProviderChange] = []
        self._announce_timer_set = False
        self._checking_history = False
        self._check_history_again = False
        self._next_history_walk = 0.0  # time.monotonic() before which no walk starts

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        if self.read_only:
            note = self.read_only_reason or "nothing can be changed from this editor"
            # Wrapped, not cut: the reason is the point of the line, whatever the width.
            yield Static(Text(clean(f"READ-ONLY: {note}")), id="read-only-note")
        yield Static(id="banner")
        yield Static(id="history-check")
        yield Static(id="fault")
        yield FilterInput(table="#selections", id="filter", compact=True,
                          placeholder="filter: provider, model or who")
        yield SelectionTable(clock=self.clock, id="selections")
        yield Static(id="detail")
        yield Footer(compact=True)

    @property
    def store_word(self) -> str:
        """What the selections live in, as the operator would say it."""
        # A URL (redis://) names a server, a path a file; the editor does not look at
        # which backend class it has (the layer contract keeps it off core internals).
        return "the store" if "://" in self.store.location else "the file"

    @property
    def _until(self) -> str:
        """What changes wait for while the store cannot be read."""
        return "the file is fixed" if self.store_word == "the file" else "the store is back"

    @property
    def table(self) -> SelectionTable:
        return self.query_one(SelectionTable)

    def on_mount(self) -> None:
        table = self.table
        table.set_widths(ColumnWidths.for_width(self.app.size.width))
        table.load(self.store.catalog, self.store.stored_snapshot)
        self._sync_problems()
        self.set_focus(table)
        self.query_one(FilterInput).display = False
        self.query_one("#fault", Static).display = False
        self.query_one("#history-check", Static).display = False
        self._show_load_error(self.store.load_error)
        self.check_history()
        if self.store.recovery_notice:
            self.notify(clean(self.store.recovery_notice), title="Recovered at start",
                        severity="warning", markup=False, timeout=12)
        if self.read_only and self.read_only_reason:
            self.notify(clean(self.read_only_reason), title="Opened read-only",
                        severity="warning", markup=False)
        self._update_status()
        self._update_detail()
        self.set_interval(AGE_REFRESH_SECONDS, self._refresh_ages, name="ages")
        if self.follow_changes:
            self._follow_store()
            self._read_fleet()
            self.set_interval(FLEET_POLL_SECONDS * 2, self._read_fleet, name="fleet")

    def on_resize(self, event: Resize) -> None:
        self.table.set_widths(ColumnWidths.for_width(event.size.width))
        self._update_status()

    # -- live changes ---------------------------------------------------------------------
    @work(exclusive=True, group="follow", exit_on_error=False)
    async def _follow_store(self) -> None:
        """Apply every change the store reports (from this editor or anyone else).

        Nothing stops it quietly: a change that cannot be shown, or a failing watch, is
        reported in the banner; the table is laid down again from the store and the
        watch goes on (after a pause if the watch itself failed).
        """
        while True:
            try:
                async for event in self.store.changes():
                    try:
                        self.show_change(event)
                    except Exception as error:  # reported, then the table is rebuilt
                        self._report_fault("could not show a change", error)
                        self.table.load(self.store.catalog, self.store.stored_snapshot)
                        self._sync_problems()
                        self._after_rows_changed()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the watch itself: report, wait, watch again
                self._report_fault("stopped following changes", error, restarting=True)
                await asyncio.sleep(FOLLOW_RESTART_SECONDS)
            else:
                return

    def _report_fault(self, what: str, error: Exception, *, restarting: bool = False,
                      then: str | None = None) -> None:
        log.error("the editor %s", what, exc_info=error)
        fault = self.query_one("#fault", Static)
        if then is None:
            then = "; watching again in a moment" if restarting else \
                "; the table was reloaded from " + self.store_word
        fault.update(safe_text(f"⚠ the editor {what}: {type(error).__name__}: {error}{then}"))
        fault.display = True
        self._fault_from_fleet = False

    def show_change(self, event: ChangeEvent) -> None:
        """Put one ChangeEvent on screen: rows in place, a flash and a note for others' changes."""
        error_state_changed = False
        if event.error is not None or self.store.load_error is not None:
            error_state_changed = not self.query_one("#banner", Static).display
            self._show_load_error(self.store.load_error)
        elif self.query_one("#banner", Static).display:
            error_state_changed = True
            self._show_load_error(None)
            self.notify(f"{self.store_word.capitalize()} is readable again; changes are "
                        "allowed.", markup=False)
        providers = [change.provider for change in event.changes]
        if providers:
            self.table.apply(event.new, providers)
        self._sync_problems()
        for screen in self.app.screen_stack:
            if isinstance(screen, ModelPicker) and screen.provider in providers:
                assert screen.provider is not None
                screen.show_title(self._picker_title(screen.provider, changed=True))
            elif isinstance(screen, RevisionsScreen) and providers:
                screen.reload()
        self.check_history()
        if event.source == "external":
            for change in event.changes:
                self.table.flash(change.provider)
            self._announce(event.changes)
        self._update_status()
        self._update_detail()
        # The footer is rebuilt on every refresh of the bindings; only a change to the
        # highlighted row or to the file's health can change what is available.
        if self.table.highlighted_provider in providers or error_state_changed:
            self.refresh_bindings()

    def _announce(self, changes: tuple[ProviderChange, ...]) -> None:
        """Say what others changed: gathered for a moment, so a storm of changes makes
        one note, not one per write."""
        if not changes:
            return
        self._unannounced.extend(changes)
        if not self._announce_timer_set:
            self._announce_timer_set = True
            self.set_timer(ANNOUNCE_SECONDS, self._announce_gathered, name="announce")

    def _announce_gathered(self) -> None:
        self._announce_timer_set = False
        changes, self._unannounced = self._unannounced, []
        title = "Changed on disk" if self.store_word == "the file" else "Changed in the store"
        if len(changes) <= 3:
            for change in changes:
                self.notify(clean(change.describe()), title=title, markup=False)
            return
        providers = {c.provider for c in changes}
        actors = sorted({clean(c.actor) for c in changes if c.actor})
        by = f" by {', '.join(actors)}" if actors else ""
        self.notify(f"{len(changes)} changes to {len(providers)} provider"
                    f"{'s' if len(providers) != 1 else ''}{by}", title=title, markup=False)

    def _show_load_error(self, error: ConfigurationError | None) -> None:
        banner = self.query_one("#banner", Static)
        if error is None:
            banner.display = False
            return
        where = f"line {error.line}, column {error.column or 1}: " if error.line else ""
        banner.update(Text.assemble(
            ("⚠ cannot read ", "bold"), (clean(error.path or self.store.location), "bold"),
            "\n", clean(where + error.reason), "\n",
            f"Showing the last good state; changes wait until {self._until}."))
        banner.display = True

    # -- the history's chain --------------------------------------------------------------
    def check_history(self) -> None:
        """Walk the history's hash chain off the UI thread and say in a line if it breaks.

        One walk at a time: asked again meanwhile, one more follows it, so a storm of
        changes costs two walks, not one per change. A walk reads every line kept (up to
        nine rotated segments of 64 MiB), so the next one waits until the editor has spent
        at most a tenth of its time walking (measured: 30 ms for 1,000 lines, 2.2 s for
        100,000 lines or 45 MiB).
        """
        if self._checking_history:
            self._check_history_again = True
            return
        self._checking_history = True
        delay = self._next_history_walk - time.monotonic()
        if delay > 0:
            self.set_timer(delay, self._verify_history, name="history-check")
        else:
            self._verify_history()

    @work(thread=True, group="history-check", exit_on_error=False)
    def _verify_history(self) -> None:
        started = time.monotonic()
        try:
            result = self.store.verify_history()
        except Exception as error:  # an unreadable history is said, never a crash
            self.post_message(self.HistoryChecked(None, error, time.monotonic() - started))
        else:
            self.post_message(self.HistoryChecked(result, None, time.monotonic() - started))

    @on(HistoryChecked)
    def _history_checked(self, message: HistoryChecked) -> None:
        self._checking_history = False
        self._next_history_walk = time.monotonic() + HISTORY_WALK_PAUSE * message.seconds
        if self._check_history_again:
            self._check_history_again = False
            self.check_history()
        line = self.query_one("#history-check", Static)
        result = message.result
        if message.error is not None:
            text = f"⚠ the history cannot be verified: {message.error}"
        elif result is None or result.ok or result.where is None:
            line.display = False  # whole, or a store that keeps no chain
            return
        else:
            segment, number = result.where
            text = (f"⚠ the history does not verify: {segment} line {number}: "
                    f"{result.problem} (modelboard audit verify)")
        line.update(Text(clean(text)))
        line.display = True

    def _refresh_ages(self) -> None:
        self.table.refresh_ages()
        self._update_detail()

    # -- status lines ---------------------------------------------------------------------
    def _update_status(self) -> None:
        table = self.table
        right = [f"{table.provider_count} providers"]
        if table.filter_text:
            right.append(f"{table.row_count} shown")
        marked = table.marked_count
        if marked:
            right.append(f"{marked} marked")
        invalid = table.problem_count
        if invalid:
            right.append(f"{invalid} invalid")
        right.append(f"sort: {table.row_order}")
        fleet = self._fleet_badge
        if fleet is not None and not fleet[1]:
            right.insert(0, fleet[0])
        warning = f"{fleet[0]}  " if fleet is not None and fleet[1] else ""
        summary = " · ".join(right)
        badge = " READ-ONLY " if self.read_only else ""
        room = (self.app.size.width - len(summary) - len(warning) - len(badge)
                - len("modelboard") - 8)
        location = clean(self.store.location)
        if len(location) > room:
            location = "…" + location[-max(room - 1, 8):]
        line = Text.assemble(("modelboard", "bold"), "  ", location, no_wrap=True,
                             overflow="ellipsis")
        if badge:
            line.append("  ")
            line.append(badge, style="bold reverse")
        line.append("  ")
        padded = summary.rjust(max(room - len(location), 0) + len(summary))
        if warning:  # the fleet needs attention: in the theme's warning colour
            line.append(" " * (len(padded) - len(summary)))
            line.append(warning, style=f"bold {self.app.current_theme.warning or 'yellow'}")
            padded = summary
        line.append(padded, style="dim")
        self._update_line("#status", line)

    def _update_detail(self) -> None:
        provider = self.table.highlighted_provider
        if provider is None:
            self._update_line("#detail", Text(
                "no provider matches the filter" if self.table.filter_text else ""))
            return
        selection = self.table.selection_of(provider)
        line = Text.assemble((clean(provider), "bold"), "  ")
        if selection is None:
            can_set = self.check_action("edit", ()) is True
            line.append("no model selected" + ("; e sets one" if can_set else ""))
        else:
            line.append(clean(selection.model_name), style="bold")
            when = self.table.age_of(provider)
            line.append(f"  set {when}" if selection.last_updated else "")
            if selection.updated_by:
                line.append(f" by {clean(selection.updated_by)}")
            if selection.locked:
                line.append("  locked" + (f": {clean(selection.lock_reason)}"
                                          if selection.lock_reason else ""), style="bold")
            problem = self.table.problem_of(provider)
            if problem is not None:
                line.append("  " + clean(self._problem_note(problem)),
                            style=f"bold {self.app.current_theme.error or 'red'}")
        line.no_wrap = True
        line.overflow = "ellipsis"
        self._update_line("#detail", line)

    @staticmethod
    def _problem_note(problem: EntryProblem) -> str:
        """What the proxy does with an entry the catalog rejects, and why (the detail line)."""
        if problem.kind == "drift":
            return f"! still served, though: {problem.reason}"
        served = f"the proxy serves {problem.served.model_name}" if problem.served \
            else "the proxy serves nothing (its default)"
        return f"✗ not served, {served}: {problem.reason}"

    def _update_line(self, selector: str, line: Text) -> None:
        """Update a one-line Static only when its text changed: each update lays out the
        screen again, which a 10,000-row table makes costly."""
        if self._lines.get(selector) == line:
            return
        self._lines[selector] = line
        self.query_one(selector, Static).update(line)

    @on(SelectionTable.RowHighlighted, "#selections")
    def _highlighted(self) -> None:
        self._update_detail()
        self.refresh_bindings()

    # -- availability: the one place that decides --------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITE_ACTIONS and self.read_only:
            return False
        if action == "explain":
            what = str(parameters[0]) if parameters else "edit"
            return self.check_action(what, ()) is None
        if action == "clear_filter":
            return bool(self.table.filter_text)
        if action in OPENS_A_DIALOG and self.focused is not self.table:
            return False  # a key typed in the filter line is a letter of the filter
        if action in WAIT_FOR_GOOD_FILE and self.store.load_error is not None:
            return None
        if action not in ("edit", "lock", "unlock", "remove", "mark", "bulk", "unmark_all",
                          "history"):
            return True
        if action in ("bulk", "unmark_all"):
            return True if self.table.marked_count else None
        provider = self.table.highlighted_provider
        if provider is None:
            return None
        selection = self.table.selection_of(provider)
        if action == "edit":
            return None if selection is not None and selection.locked else True
        if action == "remove":
            return None if selection is None or selection.locked else True
        if action == "lock":  # hidden on a locked row, where l is Unlock
            return None if selection is None else not selection.locked
        if action == "unlock":
            return selection is not None and selection.locked
        return True

    def why_not(self, action: str) -> str:
        """One line saying why ``action`` is unavailable on the highlighted row."""
        if self.store.load_error is not None:
            return f"{self.store.location} cannot be read; changes wait until {self._until}"
        if action == "bulk":
            return "no rows are marked; space marks the highlighted row"
        provider = self.table.highlighted_provider
        if provider is None:
            return "no provider is highlighted"
        selection = self.table.selection_of(provider)
        if selection is None:
            return f"{provider} has no model selected"
        if selection.locked:
            lock = describe_lock(selection.updated_by, selection.lock_reason)
            return f"{provider} is {lock}; press l to unlock it first"
        return f"{action} is not available here"

    def action_explain(self, action: str) -> None:
        what = "set marked rows" if action == "bulk" else action
        self.notify(clean(self.why_not(action)), title=f"Cannot {what}",
                    severity="warning", markup=False)

    def available_commands(self) -> list[tuple[str, str, str]]:
        """(action, title, help) for the palette: what can be done right now, nothing else."""
        commands = []
        seen: set[str] = set()
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.system or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            action, _, _ = binding.action.partition("(")
            if self.check_action(action, ()) is True:
                commands.append((binding.action, binding.description, binding.tooltip))
        return commands

    def help_keys(self) -> list[tuple[str, str, str]]:
        keys: list[tuple[str, str, str]] = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            action = binding.action.partition("(")[0]
            # Help lists every key of the mode, whatever row is highlighted now.
            hidden = self.read_only and action in WRITE_ACTIONS
            if binding.system or hidden:
                continue
            shown = binding.key_display or binding.key
            keys.append((shown, binding.description, binding.tooltip))
        keys += [("ctrl+p", "Palette", "Every action, searchable"),
                 ("q", "Quit", "Leave (waits for a save in progress)")]
        return keys

    @on(CommandChosen)
    async def _command_chosen(self, message: CommandChosen) -> None:
        await self.run_action(message.action)

    # -- actions --------------------------------------------------------------------------
    @on(SelectionTable.RowSelected, "#selections")
    async def _row_selected(self, event: SelectionTable.RowSelected) -> None:
        event.stop()
        if self.app.screen is not self:
            return  # a dialog is already open (a fast second click)
        available = self.check_action("edit", ())
        if available:
            await self.action_edit()
        elif available is None:
            self.action_explain("edit")

    @on(SelectionTable.HeaderSelected, "#selections")
    def _header_selected(self, event: SelectionTable.HeaderSelected) -> None:
        column = event.column
        if column in SORT_ORDERS:
            self.table.set_sort(column)
            self._update_status()

    async def action_edit(self) -> None:
        provider = self.table.highlighted_provider
        if provider is not None:
            await self.open_editor(provider)

    def open_editor(self, provider: str, *, initial: str = "",
                    expect: Any = UNSET, error: str | None = None) -> AwaitMount:
        """The model picker for ``provider``; saving expects the model shown when it opened."""
        current = self.store.get_model_selection(provider)
        current_model = current.model_name if current else None
        if expect is UNSET:
            expect = current_model
        catalog = self.store.catalog
        spec = catalog.get(provider)
        title = self._picker_title(provider)

        def chosen(model: str | None) -> None:
            if model is not None:
                self.save(PendingChange("set", provider, model, expect=expect))

        return self.app.push_screen(ModelPicker(
            title=title, provider=provider, models=spec.models if spec else (),
            any_model=bool(spec and spec.any_model),
            check=partial(catalog.validate, provider), current=current_model,
            initial=initial, error=error), chosen)

    def _picker_title(self, provider: str, *, changed: bool = False) -> str:
        """``openai · now gpt-4o``; after a live change, who made it and when."""
        current = self.store.get_model_selection(provider)
        title = f"{provider} · now {current.model_name if current else DASH}"
        if changed:
            by = f" by {short_actor(current.updated_by)}" if current and current.updated_by \
                else ""
            when = relative_time(current.last_updated, self.clock()) if current else ""
            title += f", changed{by} {when}".rstrip()
        return title

    async def action_unlock(self) -> None:
        await self.action_lock()  # the same dialog flow: it unlocks a locked row

    async def action_lock(self) -> None:
        provider = self.table.highlighted_provider
        selection = self.store.get_model_selection(provider) if provider else None
        if provider is None or selection is None:
            return
        if selection.locked:
            def unlock(confirmed: bool | None) -> None:
                if confirmed:
                    self.save(PendingChange("unlock", provider))
            story = describe_lock(selection.updated_by, selection.lock_reason)
            await self.app.push_screen(ConfirmDialog(
                Text.assemble("Unlock ", (clean(provider), "bold"), "? It is ", clean(story),
                              "."), confirm_label="Unlock"), unlock)
            return

        def lock(request: LockRequest | None) -> None:
            if request is not None:
                self.save(PendingChange("lock", provider, reason=request.reason))
        await self.app.push_screen(LockDialog(provider, selection.model_name), lock)

    async def action_remove(self) -> None:
        provider = self.table.highlighted_provider
        selection = self.store.get_model_selection(provider) if provider else None
        if provider is None or selection is None:
            return
        expect = selection.model_name

        def remove(confirmed: bool | None) -> None:
            if confirmed:
                self.save(PendingChange("remove", provider, expect=expect))
        await self.app.push_screen(ConfirmDialog(
            Text.assemble("Remove ", (clean(provider), "bold"), "'s selection (",
                          (clean(expect), "bold"), ")? The proxy will have no model for it."),
            confirm_label="Remove"), remove)

    def action_mark(self) -> None:
        provider = self.table.highlighted_provider
        if provider is None:
            return
        self.table.toggle_mark(provider)
        self._update_status()
        self.refresh_bindings()

    def action_unmark_all(self) -> None:
        self.table.clear_marks()
        self._update_status()
        self.refresh_bindings()

    async def action_bulk(self) -> None:
        marked = self.table.marked
        if not marked:
            return
        catalog = self.store.catalog
        specs = {provider: catalog.get(provider) for provider in marked}
        listed = [p for p, spec in specs.items() if spec is not None and not spec.any_model]
        anything = [p for p, spec in specs.items() if spec is not None and spec.any_model]
        offered: list[str] = []  # every model a marked provider lists, served-by-all first
        for provider in listed:
            offered += [m for m in specs[provider].models if m not in offered]  # type: ignore[union-attr]

        def refusing(model: str) -> list[str]:
            return [p for p in listed if not specs[p].accepts(model)]  # type: ignore[union-attr]

        offered.sort(key=lambda model: bool(refusing(model)))

        def annotate(model: str) -> str | None:
            refused = refusing(model)
            return f"not served by {', '.join(refused)}" if refused else None

        note = None
        if anything:
            note = f"{', '.join(anything)} accept{'s' if len(anything) == 1 else ''} any model"
        if listed and not [m for m in offered if not refusing(m)]:
            note = ("no model is served by every marked provider; the review shows which "
                    "rows cannot take yours" + (f". {note}" if note else ""))

        def check(model: str) -> None:
            if not model.strip():
                raise ValidationError("type a model name")

        def chosen(model: str | None) -> None:
            if model is not None:
                self.review_bulk(marked, model)
        await self.app.push_screen(ModelPicker(
            title=f"Set one model on {len(marked)} marked providers", models=offered,
            any_model=True, check=check, note=note, annotate=annotate), chosen)

    def review_bulk(self, providers: list[str], model: str, *, error: str | None = None
                    ) -> None:
        """Old -> new for every provider, or why it cannot change; ``a`` writes the rows
        that can, all in one write (the rows marked ✗ stay as they are)."""
        rows: list[BulkRow] = []
        wanted: dict[str, tuple[str | None, str]] = {}
        for provider in providers:
            selection = self.store.get_model_selection(provider)
            wanted[provider] = (selection.model_name if selection else None, model)
        # The store's rules as a dry run: every obstacle is shown, worded by the core.
        outcome = self.store.check([Operation("set", provider, new, expect=old)
                                    for provider, (old, new) in wanted.items()])
        problems = {refusal.operation.provider: refusal.error for refusal in outcome.refusals}
        bulk: dict[str, tuple[str | None, str]] = {}
        for provider, (old, new) in wanted.items():
            refused = problems.get(provider)
            problem = None if refused is None else \
                refused.detail if isinstance(refused, LockedError) else \
                str(refused).removeprefix(f"{provider}: ")
            rows.append(BulkRow(provider, old, new, problem))
            if problem is None:
                bulk[provider] = (old, new)

        def decided(apply: bool | None) -> None:
            if apply and bulk:
                self.save(PendingChange("bulk", bulk=bulk))
        self.app.push_screen(BulkReview(rows, error=error), decided)

    async def action_history(self) -> None:
        provider = self.table.highlighted_provider
        if provider is None:
            return
        selection = self.store.get_model_selection(provider)
        expect = selection.model_name if selection else None
        can_restore = self.check_action("edit", ()) is True  # restoring is editing

        def restore(model: str | None) -> None:
            if model is not None:
                self.save(PendingChange("set", provider, model, expect=expect))
        await self.app.push_screen(HistoryScreen(
            provider, load=partial(self.store.history, provider, limit=500), now=self.clock,
            can_restore=can_restore), restore)

    def action_filter(self) -> None:
        filter_input = self.query_one(FilterInput)
        filter_input.display = True
        # At once, not on the next tick: keys typed right after "/" belong to the filter,
        # never to the table's single-key actions.
        self.set_focus(filter_input)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value.strip())
        self._after_rows_changed()

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        filter_input = self.query_one(FilterInput)
        filter_input.display = bool(filter_input.value.strip())
        self.set_focus(self.table)

    @on(FilterInput.Cleared)
    def action_clear_filter(self) -> None:
        filter_input = self.query_one(FilterInput)
        filter_input.value = ""
        filter_input.display = False
        self.table.set_filter("")
        self.set_focus(self.table)
        self._after_rows_changed()

    def action_sort(self) -> None:
        order = SORT_ORDERS[(SORT_ORDERS.index(self.table.row_order) + 1) % len(SORT_ORDERS)]
        self.table.set_sort(order)
        self._update_status()

    def action_fleet(self) -> None:
        self.app.push_screen(FleetScreen(self.store, now=self.clock))

    def action_revisions(self) -> None:
        def confirmed(plan: RollbackPlan) -> None:
            self.save(PendingChange("rollback", plan=plan))
        self.app.push_screen(RevisionsScreen(self.store, read_only_reason=self.read_only_reason,
                                             confirmed=confirmed))

    # -- the fleet: the header's badge, and whether a save reached every reader ----------
    @work(thread=True, exclusive=True, group="fleet", exit_on_error=False)
    def _read_fleet(self) -> None:
        try:
            readers = self._fleet.readers()
        except Exception as error:  # reported in the fault line; the next interval reads again
            self.post_message(self.FleetRead([], error=error))
            return
        self.post_message(self.FleetRead(readers))

    @work(thread=True, group="fleet-save", exit_on_error=False)
    def _follow_save(self, revision: str) -> None:
        try:
            waited = Fleet(self.store).wait_for(revision, timeout_s=REACH_TIMEOUT_S,
                                                poll_s=0.05)
        except Exception as error:
            self.post_message(self.FleetRead([], error=error))
            return
        self.post_message(self.FleetRead([], waited))

    @on(FleetRead)
    def _fleet_read(self, message: FleetRead) -> None:
        if message.error is not None:
            self._report_fault("could not read the readers' reports", message.error,
                               then=f"; reading them again in {FLEET_POLL_SECONDS * 2:.0f} s")
            self._fault_from_fleet = True
            return
        if self._fault_from_fleet:  # read again: the fault it reported is over
            self._fault_from_fleet = False
            self.query_one("#fault", Static).display = False
        if message.waited is not None:
            notice = reached_notice(message.waited)
            if notice is not None:
                text, warn = notice
                self.notify(clean(text), title="Fleet", markup=False,
                            severity="warning" if warn else "information",
                            timeout=8 if warn else 4)
            return
        badge = fleet_badge(message.readers)
        if badge != self._fleet_badge:
            self._fleet_badge = badge
            self._update_status()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.help_keys(), self.HELP))

    def _sync_problems(self) -> None:
        """Mark the rows the proxy does not serve as stored (the store's own verdict)."""
        self.table.set_problems({problem.provider: problem
                                 for problem in self.store.problems()})

    def _after_rows_changed(self) -> None:
        self._sync_problems()
        self._update_status()
        self._update_detail()
        self.refresh_bindings()

    # -- saving ---------------------------------------------------------------------------
    @property
    def saving(self) -> bool:
        return self._saves_in_flight > 0

    def save(self, change: PendingChange) -> None:
        """Store ``change`` off the UI thread; Saved or SaveFailed follows."""
        self._saves_in_flight += 1
        self._write(change)

    @work(thread=True, group="save", exit_on_error=False)
    def _write(self, change: PendingChange) -> None:
        before = [self.store.get_model_selection(p) for p in change.providers()]
        try:
            rollback = write_change(self.store, change)
        except Exception as error:  # every failure is reported on screen, never lost
            self.post_message(self.SaveFailed(change, error))
        else:
            after = [self.store.get_model_selection(p) for p in change.providers()]
            unchanged = rollback.number is None if rollback is not None else before == after
            self.post_message(self.Saved(change, unchanged=unchanged, rollback=rollback))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        self._saves_in_flight -= 1
        change = message.change
        self.table.apply(self.store.stored_snapshot, change.providers())
        if change.kind == "bulk":  # rows that could not change stay marked
            for provider in change.bulk:
                self.table.unmark(provider)
        if change.kind == "rollback":
            self._rolled_back(message.rollback)
        elif message.unchanged:
            self.notify(clean(self._already(change)), title="Unchanged", markup=False,
                        timeout=4)
        else:
            self.notify(clean(change.describe()), title="Saved", markup=False, timeout=4)
        self.check_history()
        if self.follow_changes and not message.unchanged:
            self._follow_save(self.store.snapshot.revision)
        self._after_rows_changed()
        self._quit_if_asked()

    def _rolled_back(self, done: Rollback | None) -> None:
        """Say what a rollback wrote (and kept), and show it in the revisions screen."""
        assert done is not None
        if done.number is None:
            text = f"nothing to change: already as revision {done.target}; nothing was written"
        else:
            count = len(done.changes)
            text = (f"rolled back to revision {done.target} as revision {done.number} "
                    f"({count} provider{'s' if count != 1 else ''})")
        if done.kept_locked:
            text += f"; kept as they are (locked): {', '.join(done.kept_locked)}"
        self.notify(clean(text), title="Rolled back" if done.number else "Unchanged",
                    markup=False, timeout=6)
        for screen in self.app.screen_stack:
            if isinstance(screen, RevisionsScreen):
                screen.reload()

    @on(SaveFailed)
    def _save_failed(self, message: SaveFailed) -> None:
        self._saves_in_flight -= 1
        change, error = message.change, message.error
        self.table.apply(self.store.stored_snapshot, change.providers())
        self._after_rows_changed()
        if isinstance(error, ConflictError) and change.kind == "rollback":
            assert change.plan is not None
            note = (f"changed since you confirmed: {error}. Nothing was written; this is "
                    "what a rollback changes now")
            self.notify(clean(f"{error}. Nothing was rolled back; review it again."),
                        title="Changed meanwhile", severity="warning", markup=False)
            for screen in self.app.screen_stack:
                if isinstance(screen, RevisionsScreen):
                    screen.ask(change.plan.target, note=note)
        elif isinstance(error, ConflictError) and change.kind in ("set", "remove"):
            self._resolve_conflict(change, error)
        elif isinstance(error, ConflictError) and change.kind == "bulk":
            self.notify(clean(f"{error}. Nothing was applied; review the new values."),
                        title="Changed meanwhile", severity="warning", markup=False)
            model = next(iter(change.bulk.values()))[1]
            self.review_bulk(list(change.bulk), model)
        else:
            text = str(error) if isinstance(error, ModelboardError) else \
                f"{type(error).__name__}: {error}"
            self.notify(clean(f"{text} (nothing was written)"), title="Not saved",
                        severity="error", markup=False, timeout=10)
            self._offer_again(change, text)
        self._quit_if_asked()

    def _offer_again(self, change: PendingChange, why: str) -> None:
        """Back to the dialog of a refused change, with what was typed and why it was not
        saved: enter tries again, escape drops it (the only way it is dropped)."""
        if self.quit_when_saved:
            return
        note = f"not saved: {why}; enter tries again, esc drops it"
        if change.kind == "set":
            self.open_editor(change.provider, initial=change.model or "",
                             expect=change.expect, error=note)
        elif change.kind == "lock":
            def lock(request: LockRequest | None) -> None:
                if request is not None:
                    self.save(PendingChange("lock", change.provider, reason=request.reason))
            selection = self.store.get_model_selection(change.provider)
            self.app.push_screen(LockDialog(
                change.provider, selection.model_name if selection else DASH,
                reason=change.reason or "", error=note), lock)
        elif change.kind == "bulk":
            model = next(iter(change.bulk.values()))[1]
            self.review_bulk(list(change.bulk), model, error=note)

    def _already(self, change: PendingChange) -> str:
        """What a change that changed nothing found (it was already so)."""
        selection = self.store.get_model_selection(change.provider)
        if change.kind == "lock" and selection is not None:
            story = describe_lock(selection.updated_by, selection.lock_reason)
            return f"{change.provider}: already {story}; nothing was written"
        if change.kind == "set":
            return f"{change.provider} already uses {change.model}; nothing was written"
        return f"{change.describe()}: it already was; nothing was written"

    def _resolve_conflict(self, change: PendingChange, error: ConflictError) -> None:
        theirs = error.theirs

        def decided(choice: ConflictChoice | None) -> None:
            if choice is ConflictChoice.OVERWRITE:
                self.save(PendingChange(change.kind, change.provider, change.model,
                                        expect=theirs))
            elif choice is ConflictChoice.KEEP_THEIRS:
                self.notify(f"Kept {clean(theirs) or 'no selection'} for "
                            f"{clean(change.provider)}; your edit was dropped", markup=False)
            elif change.kind == "set":
                self.open_editor(change.provider, initial=change.model or "", expect=theirs)
            else:
                self.notify(f"Nothing was removed from {clean(change.provider)}",
                            markup=False)
        self.app.push_screen(ConflictScreen(
            provider=change.provider, theirs=theirs, theirs_by=error.theirs_by,
            mine=change.model, can_edit_again=change.kind == "set"), decided)

    def _quit_if_asked(self) -> None:
        if self.quit_when_saved and not self.saving:
            self.app.exit(0)
