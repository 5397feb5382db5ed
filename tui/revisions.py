"""The revisions screen: every write, newest first; what changed since one; rolling back to it.

| key | action |
| :- | :- |
| enter | the highlighted revision against now, provider by provider |
| r | roll back to it: a confirmation lists what will change; y writes |
| ? | help |
| escape, v, q | back to the table |

The core works everything out (``store.revisions``, ``store.document_at``,
``diff_documents``, ``store.plan_rollback``, ``store.rollback``); this module only shows
it. The history is read in thread workers; the rollback itself is saved by the main view,
in a thread worker like every other change, so quitting waits for it and a refusal is
reported in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Static

from modelboard.core import (
    ProviderChange,
    Revision,
    RollbackPlan,
    Selection,
    SelectionStore,
    diff_documents,
)
from modelboard.core.errors import describe_lock

from .dialogs import HelpScreen
from .display import DASH, clean, safe_text

__all__ = ["REVISIONS_SHOWN", "DiffScreen", "RevisionsScreen", "RollbackConfirm",
           "selection_text"]

#: How many revisions the screen lists (read from the end of the history, so the cost
#: does not grow with the history behind them).
REVISIONS_SHOWN = 500
_COLUMNS = (("rev", "rev"), ("time (UTC)", "time"), ("by", "by"),
            ("change (reason)", "change"))
#: Cells taken by everything but the change column: rev, time, by (cut to 14), padding.
_FIXED_CELLS = 4 + 16 + 14 + 8


def selection_text(selection: Selection | None) -> Text:
    """``gpt-4o``, ``claude-sonnet-4-5 (locked)``, or a dash for no selection."""
    if selection is None:
        return Text(DASH, style="dim", end="")
    text = safe_text(selection.model_name)
    if selection.locked:
        text.append(" (locked)", style="bold")
    return text


def _time_text(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _change_rows(table: DataTable[Text], changes: Sequence[ProviderChange]) -> None:
    for change in changes:
        table.add_row(safe_text(change.provider, style="bold"), selection_text(change.old),
                      Text("->", end=""), selection_text(change.new), key=change.provider)


class RevisionsScreen(Screen[None]):
    """The log of whole writes, newest first; see the module docstring for its keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding: the table's own enter (select the row) would hide it from
        # the footer; a click on a row still selects it, which shows the diff too.
        Binding("enter", "diff", "Diff", id="revisions.diff", priority=True,
                tooltip="What changed from this revision to now, provider by provider"),
        Binding("r", "rollback", "Roll back", id="revisions.rollback",
                tooltip="Make the document what it was at this revision (asks first, y)"),
        Binding("r", "explain_rollback", "Why not", show=False, system=True,
                id="revisions.rollback.why"),
        Binding("question_mark", "help", "Help", id="revisions.help", key_display="?",
                tooltip="Every key of this screen"),
        Binding("escape,v,q", "close", "Back", id="revisions.close",
                tooltip="Back to the table of providers"),
    ]

    HELP = ("Each row is one write (one revision), newest first: its number, when (UTC), who, "
            "what it changed and why. enter compares it with now; r rolls the whole "
            "document back to it in one write, recorded as a new revision. Locked providers "
            "stay as they are (unlock them first to roll them back). A revision from before "
            "numbering cannot be rebuilt, so it can be neither compared nor rolled back to.")

    DEFAULT_CSS = """
    RevisionsScreen { layout: vertical; }
    RevisionsScreen #revisions-title { height: 1; padding: 0 1; background: $panel; }
    RevisionsScreen #revisions-table { height: 1fr; }
    RevisionsScreen #revisions-status { height: auto; max-height: 3; padding: 0 1;
                                        background: $panel; color: $text-muted; }
    """

    class Loaded(Message):
        """The revisions were read (posted from the reading thread)."""

        def __init__(self, revisions: list[Revision]) -> None:
            super().__init__()
            self.revisions = revisions

    class LoadFailed(Message):
        """The history could not be read; the message says why."""

        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

    class Planned(Message):
        """What a rollback would change was worked out (or why it cannot be)."""

        def __init__(self, number: int, plan: RollbackPlan | None,
                     error: Exception | None, note: str | None) -> None:
            super().__init__()
            self.number = number
            self.plan = plan
            self.error = error
            self.note = note

    def __init__(self, store: SelectionStore, *, read_only_reason: str | None,
                 confirmed: Callable[[RollbackPlan], None]) -> None:
        """``confirmed(plan)`` saves a rollback the operator confirmed (the main view's
        save); ``read_only_reason`` is why nothing can be written, None when it can."""
        super().__init__()
        self.store = store
        self._read_only_reason = read_only_reason if store.read_only else None
        self._read_only = store.read_only
        self._confirmed = confirmed
        self._revisions: dict[str, Revision] = {}
        self._loaded = False

    def compose(self) -> ComposeResult:
        yield Static(id="revisions-title")
        yield DataTable(id="revisions-table", cursor_type="row", zebra_stripes=False)
        yield Static("reading the history…", id="revisions-status")
        yield Footer(compact=True)

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#revisions-table", DataTable)

    def on_mount(self) -> None:
        for label, key in _COLUMNS:
            self.table.add_column(label, key=key)
        self.table.focus()
        self._show_title("reading the history…")
        self.reload()

    def _show_title(self, count: str) -> None:
        self.query_one("#revisions-title", Static).update(Text.assemble(
            ("Revisions", "bold"), f" ({count}, newest first) of ", clean(self.store.location),
            no_wrap=True, overflow="ellipsis"))

    def on_resize(self) -> None:
        if self._loaded:
            self._lay_rows(self._revisions)

    # -- reading ---------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the revisions again (after a write here or elsewhere); the cursor stays on
        the revision it was on."""
        self._read()

    @work(thread=True, exclusive=True, group="revisions", exit_on_error=False)
    def _read(self) -> None:
        try:
            revisions = self.store.revisions(limit=REVISIONS_SHOWN)
        except Exception as error:  # whatever the history holds, the editor stays
            self.post_message(self.LoadFailed(error))
        else:
            self.post_message(self.Loaded(revisions))

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self._show_title("not read")
        self.query_one("#revisions-status", Static).update(
            Text(clean(f"cannot read the history: {message.error}")))

    @on(Loaded)
    def _loaded_revisions(self, message: Loaded) -> None:
        was_on = self.highlighted_key
        revisions: dict[str, Revision] = {}
        for index, revision in enumerate(message.revisions):
            key = str(revision.number) if revision.number is not None else f"~{index}"
            revisions[key] = revision
        self._lay_rows(revisions, was_on)
        self._revisions = revisions
        self._loaded = True
        count = len(revisions)
        self._show_title(f"{count} revision{'s' if count != 1 else ''}"
                         + (f" (the newest {REVISIONS_SHOWN})" if count >= REVISIONS_SHOWN
                            else "") if count else "no revisions recorded yet")
        self._show_detail()
        self.refresh_bindings()

    def _lay_rows(self, revisions: dict[str, Revision], was_on: str | None = None) -> None:
        """Every row, the change column cut to the screen's width (the line under the
        table shows the highlighted revision whole)."""
        table = self.table
        was_on = was_on or self.highlighted_key
        width = max(self.app.size.width - _FIXED_CELLS, 24)
        # A log grows at its top, where a DataTable cannot add a row: it is laid down
        # again (a few hundred short rows), and the cursor put back on its revision.
        with self.app.batch_update():
            table.clear()
            for key, revision in revisions.items():
                table.add_row(*self._cells(revision, width), key=key)
            if was_on in revisions:
                table.move_cursor(row=table.get_row_index(was_on), animate=False)

    @staticmethod
    def _cells(revision: Revision, width: int) -> tuple[Text, ...]:
        number = str(revision.number) if revision.number is not None else "-"
        return (Text(number, style="bold", justify="right"), Text(_time_text(revision.time)),
                safe_text(revision.actor, limit=14),
                safe_text(revision.summary_and_reason(), limit=width))

    def _show_detail(self) -> None:
        """The highlighted revision whole, under the table: who, when, what and why."""
        revision = self.highlighted
        line = self.query_one("#revisions-status", Static)
        if revision is None:
            line.update("")
            return
        number = f"revision {revision.number}" if revision.number is not None else \
            "a revision from before numbering"
        line.update(Text.assemble((number, "bold"), f" by {clean(revision.actor)} at "
                                  f"{_time_text(revision.time)} UTC: ",
                                  clean(revision.summary_and_reason())))

    @property
    def highlighted_key(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key

    @property
    def highlighted(self) -> Revision | None:
        key = self.highlighted_key
        return self._revisions.get(key) if key is not None else None

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()

    # -- availability: the one place that decides --------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rollback":
            if self._read_only:
                return False  # read-only shows no write action (r says why, below)
            return None if self._why_not_rollback() else True
        if action == "explain_rollback":
            return self.check_action("rollback", ()) is not True
        if action == "diff":
            revision = self.highlighted
            return True if revision is not None and revision.number is not None else None
        return True

    def _why_not_rollback(self) -> str | None:
        if self._read_only:
            why = self._read_only_reason or "opened read-only"
            return f"read-only ({why}): nothing can be rolled back from this editor"
        if self.store.load_error is not None:
            return (f"{self.store.location} cannot be read; a rollback waits until it is "
                    "fixed")
        revision = self.highlighted
        if revision is None:
            return "no revision is highlighted" if self._loaded else "the history is being read"
        if revision.number is None:
            return ("this revision is from before numbering: the history cannot rebuild "
                    "it, so it cannot be rolled back to")
        return None

    def action_explain_rollback(self) -> None:
        why = self._why_not_rollback()
        if why is not None:
            self.notify(clean(why), title="Cannot roll back", severity="warning",
                        markup=False)

    # -- actions --------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_diff()

    def action_diff(self) -> None:
        revision = self.highlighted
        if revision is None:
            return
        if revision.number is None:
            self.notify("This revision is from before numbering: the history cannot "
                        "rebuild it.", title="No diff", severity="warning", markup=False)
            return
        self.app.push_screen(DiffScreen(self.store, revision.number))

    def action_rollback(self) -> None:
        revision = self.highlighted
        if revision is not None and revision.number is not None:
            self.ask(revision.number)

    def ask(self, number: int, *, note: str | None = None) -> None:
        """Work out what rolling back to ``number`` changes now, then ask; ``note`` says
        why it is asked again (the store changed since the last question)."""
        self._plan(number, note)

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def _plan(self, number: int, note: str | None) -> None:
        try:
            plan = self.store.plan_rollback(number)
        except Exception as error:  # a revision the history cannot rebuild, say
            self.post_message(self.Planned(number, None, error, note))
        else:
            self.post_message(self.Planned(number, plan, None, note))

    @on(Planned)
    def _planned(self, message: Planned) -> None:
        plan = message.plan
        if plan is None:
            self.notify(clean(str(message.error)), title="Cannot roll back",
                        severity="error", markup=False, timeout=10)
            return
        if not plan.changes:
            kept = f" (locked, kept: {', '.join(plan.kept_locked)})" if plan.kept_locked else ""
            self.notify(clean(f"Nothing to roll back: the document already is as at revision "
                              f"{plan.target}{kept}; nothing was written"),
                        title="Unchanged", markup=False, timeout=6)
            return

        def decided(confirmed: bool | None) -> None:
            if confirmed:
                self._confirmed(plan)
            else:
                self.notify(f"Not rolled back to revision {plan.target}; nothing was written.",
                            title="Cancelled", markup=False, timeout=4)
        self.app.push_screen(RollbackConfirm(plan, note=message.note), decided)

    def action_help(self) -> None:
        keys = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.system or (self._read_only and binding.action == "rollback"):
                continue
            keys.append((binding.key_display or binding.key, binding.description,
                         binding.tooltip))
        self.app.push_screen(HelpScreen(keys, self.HELP))

    def action_close(self) -> None:
        self.dismiss(None)


class DiffScreen(ModalScreen[None]):
    """What changed from one revision to now, provider by provider (read in a thread)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", id="diff.close",
                tooltip="Back to the revisions"),
    ]

    class Loaded(Message):
        def __init__(self, changes: tuple[ProviderChange, ...] | None,
                     error: Exception | None) -> None:
            super().__init__()
            self.changes = changes
            self.error = error

    def __init__(self, store: SelectionStore, number: int) -> None:
        super().__init__()
        self._store = store
        self._number = number

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="diff"):
            yield Static(Text.assemble(("Revision ", "bold"), (str(self._number), "bold"),
                                       " -> now, provider by provider"), id="dialog-title")
            table: DataTable[Text] = DataTable(id="diff-table", cursor_type="row")
            yield table
            yield Static("rebuilding the revision…", id="diff-status")
            yield Static("esc close", id="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#diff-table", DataTable)
        table.add_column("provider", key="provider")
        table.add_column(f"at revision {self._number}", key="old")
        table.add_column(" ", key="arrow")
        table.add_column("now", key="new")
        table.focus()
        self._read()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def _read(self) -> None:
        try:
            then = self._store.document_at(self._number)
            changes = diff_documents(then, self._store.stored_snapshot)
        except Exception as error:  # a revision the history cannot rebuild, say
            self.post_message(self.Loaded(None, error))
        else:
            self.post_message(self.Loaded(changes, None))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        status = self.query_one("#diff-status", Static)
        if message.changes is None:
            status.update(safe_text(f"cannot show revision {self._number}: {message.error}"))
            return
        _change_rows(self.query_one("#diff-table", DataTable), message.changes)
        count = len(message.changes)
        status.update(f"{count} provider{'s' if count != 1 else ''} changed since revision "
                      f"{self._number}" if count else
                      f"revision {self._number} and now are the same")

    def action_close(self) -> None:
        self.dismiss(None)


class RollbackConfirm(ModalScreen[bool | None]):
    """Exactly what a rollback will change, and which locked providers it keeps and why.

    ``y`` confirms; the arrow and page keys scroll the list; any other key (escape, n,
    enter …) cancels, so nothing typed ahead or out of habit rolls the store back.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Roll back", id="rollback.yes",
                tooltip="Write the rollback, one write"),
        Binding("escape,n", "cancel", "Cancel", id="rollback.cancel",
                tooltip="Close without writing anything (so does any other key)"),
    ]

    #: Keys that only move through the list.
    SCROLL_KEYS = frozenset({"up", "down", "pageup", "pagedown", "home", "end", "j", "k"})

    def __init__(self, plan: RollbackPlan, *, note: str | None = None) -> None:
        super().__init__()
        self.plan = plan
        self._note = note

    def compose(self) -> ComposeResult:
        plan = self.plan
        count = len(plan.changes)
        with Vertical(id="dialog", classes="rollback"):
            yield Static(Text.assemble(
                "Roll back to revision ", (str(plan.target), "bold"), "? ",
                f"{count} provider{'s' if count != 1 else ''} change, in one write "
                f"recorded as \"rollback to {plan.target}\":"), id="dialog-title")
            if self._note:
                yield Static(safe_text(f"⚠ {self._note}"), id="rollback-note")
            table: DataTable[Text] = DataTable(id="rollback-table", cursor_type="row")
            yield table
            for provider in plan.kept_locked:
                yield Static(self._kept_line(provider), classes="rollback-kept")
            with Horizontal(classes="buttons"):
                yield Button("Roll back", variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")
            yield Static("y roll back · any other key cancels", id="dialog-hint")

    def _kept_line(self, provider: str) -> Text:
        now = self.plan.base.get(provider)
        story = describe_lock(now.updated_by, now.lock_reason) if now is not None else "locked"
        model = now.model_name if now is not None else DASH
        return Text.assemble((clean(provider), "bold"), f" stays {clean(model)} ({clean(story)}); "
                             "unlock it first to roll it back")

    def on_mount(self) -> None:
        table = self.query_one("#rollback-table", DataTable)
        table.add_column("provider", key="provider")
        table.add_column("now", key="old")
        table.add_column(" ", key="arrow")
        table.add_column(f"after (as at {self.plan.target})", key="new")
        _change_rows(table, self.plan.changes)
        table.focus()  # the arrows scroll it; no button has the focus, so enter cancels

    async def on_key(self, event: events.Key) -> None:
        if event.key == "y" or event.key in self.SCROLL_KEYS:
            return  # the binding, or the table's own keys
        event.stop()
        event.prevent_default()
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
