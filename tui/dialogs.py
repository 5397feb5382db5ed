"""Typed dialogs: each is a ``ModalScreen[Result | None]`` whose escape dismisses None.

| dialog | result |
| :- | :- |
| ModelPicker | the model name picked, validated by the core |
| ConfirmDialog | True to go ahead |
| LockDialog | a LockRequest with the optional reason |
| BulkReview | True to apply every change, all or nothing |
| ConflictScreen | what to do with a pending edit someone else's change overtook |
| HistoryScreen | the model to restore |
| HelpScreen | nothing |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from itertools import pairwise
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from modelboard.core import HistoryEntry, ValidationError

from .display import DASH, clean, relative_time, safe_text

__all__ = [
    "BulkReview",
    "BulkRow",
    "ConfirmDialog",
    "ConflictChoice",
    "ConflictScreen",
    "HelpScreen",
    "HistoryScreen",
    "LockDialog",
    "LockRequest",
    "ModelMatch",
    "ModelPicker",
    "highlighted",
    "match_model",
    "rank_models",
]

_FREE_TEXT = "free:"
_LISTED = "model:"


def _steady(app_input: Input) -> None:
    """No blinking cursor when the app asks for it (snapshots must not depend on timing)."""
    app_input.cursor_blink = bool(getattr(app_input.app, "cursor_blink", True))


class TypeaheadInput(Input):
    """An Input that handles every key in the order the keys arrived.

    Textual's Input inserts a printable key as it receives it, but its key bindings
    (ctrl+u, backspace, enter …) run only after the key has bubbled up to the app, so
    keys typed ahead (a script's ``ctrl+u o 3 enter``, a busy screen) run out of order:
    ``o3`` typed, then erased by the ctrl+u sent before it, then an empty enter.
    Running this field's own bindings here, as each key arrives, keeps them in order.
    """

    async def on_key(self, event: events.Key) -> None:
        for binding in self.BINDINGS:
            keys = binding.key if isinstance(binding, Binding) else binding[0]
            if event.key in keys.split(","):
                event.stop()
                event.prevent_default()
                action = binding.action if isinstance(binding, Binding) else binding[1]
                await self.run_action(action)
                return


# -- choosing a model ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class ModelMatch:
    """How well a model name matches what was typed; smaller sorts first.

    ``tier``: 0 the exact name, 1 a prefix, 2 a word's prefix (``sonnet`` in
    ``claude-sonnet-4-5``), 3 the letters in order (``g4o`` in ``gpt-4o``). Within tier 3,
    the fewest gaps between matched letters, then the shortest gaps, then the fewest
    letters left over. Catalog order last, in every tier (the catalog lists newest first).
    ``letters`` are the matched positions, the ones the picker highlights.
    """

    tier: int
    gaps: int
    gap_cells: int
    left_over: int
    position: int
    model: str
    letters: tuple[int, ...]


def match_model(model: str, query: str, position: int = 0) -> ModelMatch | None:
    """``model`` matched against ``query`` (case-insensitive), or None if it does not match."""
    match = _match(model.casefold(), query.strip().casefold(), position, model)
    if match is not None and len(model.casefold()) != len(model):
        # Case folding changed the length (ß -> ss): the positions would mark wrong letters.
        return ModelMatch(match.tier, match.gaps, match.gap_cells, match.left_over,
                          position, model, ())
    return match


def _match(name: str, needle: str, position: int, model: str) -> ModelMatch | None:
    if not needle:
        return ModelMatch(0, 0, 0, 0, position, model, ())
    left_over = len(name) - len(needle)
    if name == needle:
        return ModelMatch(0, 0, 0, 0, position, model, tuple(range(len(needle))))
    if name.startswith(needle):
        return ModelMatch(1, 0, 0, 0, position, model, tuple(range(len(needle))))
    for start in _word_starts(name):
        if name.startswith(needle, start):
            return ModelMatch(2, 0, 0, 0, position, model,
                              tuple(range(start, start + len(needle))))
    letters = _closest_letters(needle, name)
    if letters is None:
        return None
    gaps = sum(1 for a, b in pairwise(letters) if b != a + 1)
    return ModelMatch(3, gaps, letters[-1] - letters[0] + 1 - len(letters), left_over,
                      position, model, letters)


def rank_models(models: Sequence[str], query: str) -> list[ModelMatch]:
    """``models`` that match ``query``, best first (see :class:`ModelMatch`)."""
    ranked = (match_model(model, query, n) for n, model in enumerate(models))
    if not query.strip():
        return [match for match in ranked if match is not None]
    return sorted(match for match in ranked if match is not None)


def _word_starts(name: str) -> list[int]:
    return [n for n in range(1, len(name)) if name[n - 1] in "-./:_ " and name[n] not in "-./:_ "]


def _closest_letters(needle: str, name: str) -> tuple[int, ...] | None:
    """Positions of ``needle``'s letters in ``name``, in order, with the fewest gaps and then
    the shortest ones (earliest on a tie); None if they are not all there in order."""
    # best[j]: (gaps, gap cells, positions) of the best placement of the letters so far
    # whose last letter is at j.
    best: dict[int, tuple[int, int, tuple[int, ...]]] = {
        j: (0, 0, (j,)) for j, char in enumerate(name) if char == needle[0]}
    for char in needle[1:]:
        step: dict[int, tuple[int, int, tuple[int, ...]]] = {}
        for j, here in enumerate(name):
            if here != char:
                continue
            options = [(gaps + (k != j - 1), cells + (j - k - 1), (*letters, j))
                       for k, (gaps, cells, letters) in best.items() if k < j]
            if options:
                step[j] = min(options)
        if not step:
            return None
        best = step
    return min(best.values())[2] if best else None


def highlighted(match: ModelMatch, style: str = "bold underline") -> Text:
    """The model name as text with its matched letters styled.

    Not Textual's ``Matcher.highlight``: it parses the name as markup (names come from
    files anyone may edit) and marks the letters of its own best match, which may not
    be the ones this ranking matched on.
    """
    text = safe_text(match.model)
    if text.plain == match.model:  # nothing was cleaned away: positions are the name's
        for letter in match.letters:
            text.stylize(style, letter, letter + 1)
    return text


class CatalogValidator(Validator):
    """The core's validation, shown inline by the Input (rules live once, in the core)."""

    def __init__(self, check: Callable[[str], None]) -> None:
        super().__init__()
        self._check = check

    def validate(self, value: str) -> ValidationResult:
        try:
            self._check(value.strip())
        except ValidationError as error:
            return self.failure(str(error), value)
        return self.success()


class ModelPicker(ModalScreen[str | None]):
    """Pick a model: type to filter, arrows move, enter picks, escape cancels.

    Providers that accept any model name also take what was typed.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel",
                tooltip="Close without changing anything"),
        Binding("down", "move(1)", "Next", show=False, id="picker.next"),
        Binding("up", "move(-1)", "Previous", show=False, id="picker.previous"),
        Binding("pagedown", "move(8)", "Page down", show=False, id="picker.page-down"),
        Binding("pageup", "move(-8)", "Page up", show=False, id="picker.page-up"),
    ]

    def __init__(self, *, title: str, models: Sequence[str], any_model: bool,
                 check: Callable[[str], None], current: str | None = None,
                 initial: str = "", error: str | None = None, provider: str | None = None,
                 note: str | None = None,
                 annotate: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        #: The provider being edited (None for a bulk change): its header follows it live.
        self.provider = provider
        self._error = error
        self._note = note
        self._annotate = annotate
        self._shown_query: str | None = None
        self._title = title
        self._models = tuple(models)
        self._any_model = any_model
        self._check = check
        self._current = current
        self._initial = initial

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="picker"):
            yield Static(safe_text(self._title), id="dialog-title")
            if self._note:
                yield Static(safe_text(self._note), id="picker-note")
            yield TypeaheadInput(value=self._initial, id="model-filter",
                        placeholder="type a model name" if self._any_model else "type to filter",
                        validators=[CatalogValidator(self._check)], validate_on=["submitted"],
                        select_on_focus=False)
            yield Static("", id="picker-error")
            option_list = OptionList(id="model-options")
            option_list.can_focus = False  # typing stays in the input; clicks still pick
            yield option_list
            hint = "enter pick · ↑↓ move · esc cancel"
            yield Static(hint if self._models else "enter save · esc cancel", id="dialog-hint")

    def show_title(self, title: str) -> None:
        """A new header (the provider changed meanwhile); the field, the list, the highlight
        and the pending choice stay exactly as they are."""
        self._title = title
        self.query_one("#dialog-title", Static).update(safe_text(title))

    def on_mount(self) -> None:
        model_filter = self.query_one("#model-filter", Input)
        _steady(model_filter)
        # At once (not focus(), which waits a tick): the next key is for this field.
        self.set_focus(model_filter)
        self._show_matches(self._initial, prefer=self._current if not self._initial else None)
        if self._error:
            self.query_one("#picker-error", Static).update(safe_text(self._error))

    @on(Input.Changed, "#model-filter")
    def _typed(self, event: Input.Changed) -> None:
        if event.value != self._shown_query:  # new text: an old error no longer applies
            self.query_one("#picker-error", Static).update("")
        self._catch_up()

    def _catch_up(self) -> None:
        """Show the matches of what the field holds now, unless they are shown already.

        The list follows the field, and nothing else: a key that moves the highlight or
        picks may be handled before the field's Changed message, and must see the list
        of the text typed so far, not an older one (nor have its highlight reset later).
        """
        typed = self.query_one("#model-filter", Input).value
        if typed != self._shown_query:
            self._show_matches(typed)

    def _show_matches(self, query: str, prefer: str | None = None) -> None:
        options: list[Option] = []
        typed = query.strip()
        self._shown_query = query
        ranked = rank_models(self._models, typed)
        matches = [match.model for match in ranked]
        if self._any_model and typed and typed not in self._models:
            options.append(Option(Text.assemble("use ", (clean(typed), "bold"), " as typed"),
                                  id=_FREE_TEXT))
        options += [Option(self._label(match), id=_LISTED + match.model) for match in ranked]
        option_list = self.query_one("#model-options", OptionList)
        option_list.set_options(options)
        if not options:
            if typed:
                self.query_one("#picker-error", Static).update(
                    safe_text(f"no listed model matches {typed!r}; enter checks it anyway"))
            return
        index = 0
        if prefer is not None and prefer in matches:
            index = matches.index(prefer) + (len(options) - len(matches))
        option_list.highlighted = index

    def _label(self, match: ModelMatch) -> Text:
        label = highlighted(match)
        note = self._annotate(match.model) if self._annotate else None
        if note:
            label.append(f"  {clean(note)}", style="dim")
        return label

    def _picked(self) -> str:
        self._catch_up()
        option = self.query_one("#model-options", OptionList).highlighted_option
        typed = self.query_one("#model-filter", Input).value.strip()
        if option is None or option.id is None or option.id == _FREE_TEXT:
            return typed
        return option.id.removeprefix(_LISTED)

    def action_move(self, step: int) -> None:
        self._catch_up()
        option_list = self.query_one("#model-options", OptionList)
        if not option_list.option_count:
            return
        current = option_list.highlighted if option_list.highlighted is not None else -1
        option_list.highlighted = min(max(current + step, 0), option_list.option_count - 1)

    @on(Input.Submitted, "#model-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._choose(self._picked())

    @on(OptionList.OptionSelected, "#model-options")
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(self._picked())

    def _choose(self, model: str) -> None:
        error = self.query_one("#picker-error", Static)
        if not model:
            error.update("type a model name")
            return
        try:
            self._check(model)
        except ValidationError as problem:
            error.update(safe_text(str(problem)))
            return
        self.dismiss(model)

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- confirming ------------------------------------------------------------------------------
class ConfirmDialog(ModalScreen[bool | None]):
    """A yes/no question about one change; y confirms, escape or n cancels.

    Enter is not "yes": Cancel has the focus, so keys typed ahead of the dialog (a
    filter typed too fast, say) can never confirm a change nobody read.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="confirm.cancel",
                tooltip="Close without changing anything"),
        Binding("y", "confirm", "Confirm", id="confirm.yes", tooltip="Go ahead"),
    ]

    def __init__(self, question: Text, *, confirm_label: str = "Confirm") -> None:
        super().__init__()
        self._question = question
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Static(self._question, id="dialog-title")
            with Horizontal(classes="buttons"):
                yield Button(self._confirm_label, variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")
            yield Static("y confirm · esc/n cancel", id="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True, slots=True)
class LockRequest:
    """Lock, with an optional reason shown to whoever tries to change it."""

    reason: str | None


class LockDialog(ModalScreen[LockRequest | None]):
    """Confirm a lock, with an optional reason typed in."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="lock.cancel",
                tooltip="Close without locking"),
    ]

    def __init__(self, provider: str, model: str, *, reason: str = "",
                 error: str | None = None) -> None:
        super().__init__()
        self._provider = provider
        self._model = model
        self._reason = reason
        self._error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="lock"):
            yield Static(Text.assemble("Lock ", (clean(self._provider), "bold"), " on ",
                                       (clean(self._model), "bold"), "?"), id="dialog-title")
            yield Label("Reason (optional, shown to whoever tries to change it)")
            yield TypeaheadInput(self._reason, id="lock-reason",
                                 placeholder="e.g. pinned for the eval run", max_length=500)
            if self._error:
                yield Static(safe_text(self._error), id="picker-error")
            with Horizontal(classes="buttons"):
                yield Button("Lock", variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")
            yield Static("enter lock · esc cancel", id="dialog-hint")

    def on_mount(self) -> None:
        reason = self.query_one("#lock-reason", Input)
        _steady(reason)
        self.set_focus(reason)  # at once: the next key is for this field

    @on(Input.Submitted, "#lock-reason")
    @on(Button.Pressed, "#confirm")
    def _confirm(self, event: Message) -> None:
        event.stop()
        reason = self.query_one("#lock-reason", Input).value.strip()
        self.dismiss(LockRequest(reason or None))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


# -- bulk -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BulkRow:
    """One line of a bulk review: what the provider has, what it will get, and any obstacle."""

    provider: str
    old: str | None
    new: str
    problem: str | None = None


class BulkReview(ModalScreen[bool | None]):
    """Every marked provider's old -> new, or why it cannot change (✗).

    ``a`` writes every row that can change in one atomic write; rows marked ✗ stay as
    they are (and stay marked). With every row blocked, ``a`` writes nothing and says so.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="bulk.cancel",
                tooltip="Close without changing anything (marks stay)"),
        Binding("a", "apply", "Apply", id="bulk.apply",
                tooltip="Write every row that can change, in one atomic write"),
    ]

    def __init__(self, rows: Sequence[BulkRow], *, error: str | None = None) -> None:
        super().__init__()
        self._rows = tuple(rows)
        self._error = error

    @property
    def blocked(self) -> int:
        """How many rows cannot change."""
        return sum(1 for row in self._rows if row.problem)

    def compose(self) -> ComposeResult:
        count = len(self._rows)
        ready = count - self.blocked
        with Vertical(id="dialog", classes="bulk"):
            yield Static(f"Review: {count} provider{'s' if count != 1 else ''}, "
                         "written together in one write", id="dialog-title")
            table: DataTable[Text] = DataTable(id="bulk-table", cursor_type="row")
            yield table
            if self._error:
                yield Static(safe_text(self._error), id="picker-error")
            if self.blocked and ready:
                yield Static(f"a applies the {ready} row{'s' if ready != 1 else ''} that can "
                             f"change; the {self.blocked} marked ✗ stay as they are.",
                             id="bulk-note")
            elif self.blocked:
                yield Static("No row can change (each is marked ✗): a writes nothing.",
                             id="bulk-note")
            label = "Apply" if self.blocked else "Apply all"
            with Horizontal(classes="buttons"):
                yield Button(label, variant="warning", id="confirm", disabled=not ready)
                yield Button("Cancel", id="cancel")
            what = f"apply {ready}" if self.blocked else "apply all"
            yield Static(f"a {what} · esc cancel", id="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#bulk-table", DataTable)
        table.add_column("provider", key="provider")
        table.add_column("old", key="old")
        table.add_column(" ", key="arrow")
        table.add_column("new", key="new")
        table.add_column("", key="note")
        for row in self._rows:
            unchanged = row.old == row.new
            note = Text(f"✗ {clean(row.problem)}", style="bold") if row.problem else \
                Text("unchanged" if unchanged else "", style="dim")
            table.add_row(safe_text(row.provider), safe_text(row.old),
                          Text("->", end=""), safe_text(row.new, style="bold"), note,
                          key=row.provider)
        table.focus()

    @on(Button.Pressed, "#confirm")
    def action_apply(self) -> None:
        if self.blocked == len(self._rows):
            self.notify("Nothing to apply: no row can change.", title="Nothing written",
                        severity="warning", markup=False)
            return
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


# -- conflicts ------------------------------------------------------------------------------
class ConflictChoice(Enum):
    OVERWRITE = "overwrite"
    KEEP_THEIRS = "keep-theirs"
    EDIT_AGAIN = "edit-again"


class ConflictScreen(ModalScreen[ConflictChoice | None]):
    """Someone changed the provider while it was being edited: theirs beside mine.

    Escape returns None, which the caller treats as "edit again": the pending edit is
    only dropped when the operator says "keep theirs".
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "choose('overwrite')", "Overwrite", id="conflict.overwrite",
                tooltip="Write my value over theirs"),
        Binding("t", "choose('keep-theirs')", "Keep theirs", id="conflict.keep-theirs",
                tooltip="Drop my edit; their value stays"),
        Binding("e", "choose('edit-again')", "Edit again", id="conflict.edit-again",
                tooltip="Back to the editor with my value filled in"),
        Binding("escape", "cancel", "Back", id="conflict.cancel",
                tooltip="Back to the editor with my value filled in"),
    ]

    def __init__(self, *, provider: str, theirs: str | None, theirs_by: str | None,
                 mine: str | None, can_edit_again: bool = True) -> None:
        super().__init__()
        self._provider = provider
        self._theirs = theirs
        self._theirs_by = theirs_by
        self._mine = mine
        self._can_edit_again = can_edit_again

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="conflict"):
            yield Static(Text.assemble((clean(self._provider), "bold"),
                                       " changed while you were editing it"),
                         id="dialog-title")
            by = f"  (by {clean(self._theirs_by)})" if self._theirs_by else ""
            theirs = safe_text(self._theirs, placeholder="(no selection)")
            yield Static(Text.assemble(("theirs  ", "bold"), theirs, by), id="conflict-theirs")
            yield Static(Text.assemble(("mine    ", "bold"),
                                       safe_text(self._mine, placeholder="(remove)"),
                                       "  (not saved yet)"), id="conflict-mine")
            with Horizontal(classes="buttons"):
                yield Button("Overwrite", variant="warning", id="overwrite")
                yield Button("Keep theirs", id="keep-theirs")
                if self._can_edit_again:
                    yield Button("Edit again", variant="primary", id="edit-again")
            yield Static("o overwrite · t keep theirs · e edit again", id="dialog-hint")

    def on_mount(self) -> None:
        # Enter presses the focused button: it must be one that writes nothing, so an
        # enter typed ahead (or out of habit) never overwrites their change.
        found = self.query("#edit-again" if self._can_edit_again else "#keep-theirs")
        if found:  # not when a key typed ahead has already closed this screen
            self.set_focus(found.first())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and parameters == ("edit-again",):
            return self._can_edit_again
        return True

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id:
            self.action_choose(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(ConflictChoice(choice))

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- history --------------------------------------------------------------------------------
class HistoryScreen(ModalScreen[str | None]):
    """A provider's changes, newest first; enter restores the highlighted entry's model."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "cancel", "Close", id="history.close",
                tooltip="Back to the table"),
        Binding("enter,r", "restore", "Restore", id="history.restore",
                tooltip="Select this entry's model again (asks nothing else)"),
    ]

    class Loaded(Message):
        """The history was read (posted from the reading thread)."""

        def __init__(self, entries: list[HistoryEntry]) -> None:
            super().__init__()
            self.entries = entries

    class LoadFailed(Message):
        """The history could not be read (no permission, a folder, the server gone)."""

        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

    def __init__(self, provider: str, *, load: Callable[[], list[HistoryEntry]],
                 now: Callable[[], datetime], can_restore: bool) -> None:
        super().__init__()
        self._provider = provider
        self._load = load
        self._now = now
        self._can_restore = can_restore
        self._entries: list[HistoryEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="history"):
            yield Static(Text.assemble("History of ", (clean(self._provider), "bold"),
                                       ", newest first"), id="dialog-title")
            table: DataTable[Text] = DataTable(id="history-table", cursor_type="row")
            yield table
            yield Static("loading…", id="history-status")
            hint = "enter restore · esc close" if self._can_restore else "esc close"
            yield Static(hint, id="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#history-table", DataTable)
        table.add_column("when", key="when", width=8)
        table.add_column("who", key="who")
        table.add_column("what", key="what")
        table.add_column("model", key="model")
        table.focus()
        self._read_history()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _read_history(self) -> None:
        try:
            entries = self._load()
        except Exception as error:  # whatever the lines hold, the editor stays
            self.post_message(self.LoadFailed(error))
        else:
            self.post_message(self.Loaded(entries))

    def on_history_screen_load_failed(self, message: LoadFailed) -> None:
        self.query_one("#history-status", Static).update(
            safe_text(f"cannot read the history: {message.error}"))

    def on_history_screen_loaded(self, message: Loaded) -> None:
        self._entries = message.entries
        table = self.query_one("#history-table", DataTable)
        now = self._now()
        for index, entry in enumerate(message.entries):
            change = Text.assemble(safe_text(entry.old, placeholder="(none)"), " -> ",
                                   safe_text(entry.new, placeholder="(none)"))
            if entry.action in ("lock", "unlock"):
                change = safe_text(entry.new)
            what = clean(entry.action) + (f": {clean(entry.reason, limit=30)}"
                                          if entry.reason else "")
            table.add_row(Text(relative_time(entry.time, now)), safe_text(entry.actor, limit=24),
                          safe_text(what), change, key=str(index))
        status = self.query_one("#history-status", Static)
        status.update(f"{len(message.entries)} change{'s' if len(message.entries) != 1 else ''}"
                      if message.entries else "no changes recorded yet")
        self.refresh_bindings()

    def _restorable(self) -> str | None:
        table = self.query_one("#history-table", DataTable)
        if not self._entries or not table.row_count:
            return None
        entry = self._entries[table.cursor_row]
        model = entry.new if entry.action == "set" else entry.old
        return model if isinstance(model, str) and model else None  # "old": 5 restores nothing

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "restore":
            if not self._can_restore:
                return False
            return True if self._restorable() else None
        return True

    def on_data_table_row_highlighted(self) -> None:
        self.refresh_bindings()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self._can_restore:
            self.action_restore()

    def action_restore(self) -> None:
        model = self._restorable()
        if model is not None:
            self.dismiss(model)

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- help -----------------------------------------------------------------------------------
class HelpScreen(ModalScreen[None]):
    """Every key of the main view, from its bindings (so help never drifts from the keys)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close",
                tooltip="Back to the table"),
    ]

    def __init__(self, keys: Sequence[tuple[str, str, str]], notes: str) -> None:
        super().__init__()
        self._keys = tuple(keys)
        self._notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Static("Keys", id="dialog-title")
            table: DataTable[Text] = DataTable(id="help-table", cursor_type="none",
                                               show_header=False)
            yield table
            yield Static(self._notes, id="help-notes")
            yield Static("esc close", id="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        table.add_column("key", key="key")
        table.add_column("action", key="action")
        table.add_column("what it does", key="tooltip")
        for key, description, tooltip in self._keys:
            table.add_row(Text(key, style="bold"), Text(description), Text(tooltip or DASH))

    def action_close(self) -> None:
        self.dismiss(None)
