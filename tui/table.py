"""The main table: one row per provider, drawn only where it is on screen.

The table is a Line API widget: ``render_line`` draws the header and the rows the
viewport shows, nothing else, so 10,000 providers cost what 40 do to paint. A change
to one provider re-renders that one line (if it is on screen at all); the cursor stays
on its provider when rows move under it. Only a new filter or sort order rebuilds the
row order, in O(rows log rows).

| key | action |
| :- | :- |
| up, down | move the cursor one row |
| pageup, pagedown | move the cursor one screen |
| home, end | first or last row |
| enter | select the highlighted row (the screen edits it) |

A click moves the cursor to a row, a click on the highlighted row selects it, and a
click on a column title asks for that sort order.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from modelboard.core import EntryProblem, Selection

from .display import DASH, clean, relative_time, safe_text, short_actor

__all__ = ["COLUMNS", "SORT_ORDERS", "ColumnWidths", "SelectionTable", "SortOrder"]

SortOrder = Literal["provider", "model", "updated"]
SORT_ORDERS: tuple[SortOrder, ...] = ("provider", "model", "updated")
COLUMNS = ("mark", "provider", "model", "lock", "updated", "by")
_TITLES = (" ", "provider", "model", "lock", "updated", "by")
_MARK = "●"
_LOCKED = "locked"
#: Before a model the proxy does not serve (rejected) or serves though the catalog no
#: longer lists it (drift); the detail line says why.
_INVALID_MARKS = {"rejected": "✗", "drift": "!"}
_PADDING = 1  # cells each side of every column
#: Rows placed one by one after a change; more than this re-sorts the visible rows at once.
_INCREMENTAL_LIMIT = 64


@dataclass(frozen=True, slots=True)
class ColumnWidths:
    """Cells per column for a terminal width: the model column takes what is left."""

    provider: int
    model: int
    by: int

    @classmethod
    def for_width(cls, width: int) -> ColumnWidths:
        # 6 columns with one cell of padding each side, 2 for a scrollbar, and the
        # fixed columns: mark (1), lock (6), updated (8).
        rest = max(width - 14 - 15, 30)
        provider = min(max(int(rest * 0.27), 12), 24)
        by = min(max(int(rest * 0.2), 8), 28)
        return cls(provider=provider, model=rest - provider - by, by=by)

    def cells(self) -> tuple[int, ...]:
        """Content width of each column of :data:`COLUMNS`, in order."""
        return (1, self.provider, self.model, 6, 8, self.by)

    @property
    def total(self) -> int:
        """The table's width with padding."""
        return sum(self.cells()) + 2 * _PADDING * len(COLUMNS)


@dataclass(slots=True)
class _Row:
    selection: Selection | None
    marked: bool = False
    flashing: bool = False


def _provider_key(rows: Mapping[str, _Row]) -> Callable[[str], tuple[object, ...]]:
    return lambda provider: (provider.casefold(), provider)


def _model_key(rows: Mapping[str, _Row]) -> Callable[[str], tuple[object, ...]]:
    def key(provider: str) -> tuple[object, ...]:
        selection = rows[provider].selection
        if selection is None:
            return (True, "", provider.casefold(), provider)
        return (False, selection.model_name.casefold(), provider.casefold(), provider)
    return key


#: Newest first: the distance back from the latest moment there is, which any aware
#: datetime can be subtracted from (``timestamp()`` fails near year 1 and 9999).
_LATEST = datetime.max.replace(tzinfo=UTC)


def _updated_key(rows: Mapping[str, _Row]) -> Callable[[str], tuple[object, ...]]:
    def key(provider: str) -> tuple[object, ...]:
        selection = rows[provider].selection
        stamp = selection.last_updated if selection is not None else None
        if stamp is None:
            return (True, timedelta(0), provider.casefold(), provider)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return (False, _LATEST - stamp, provider.casefold(), provider)
    return key


_SORT_KEYS = {"provider": _provider_key, "model": _model_key, "updated": _updated_key}


class SelectionTable(ScrollView, can_focus=True):
    """Providers with their model, lock, age and author; see the module docstring.

    The table owns what is shown (filter, sort, marks, flashes, cursor); the screen owns
    what is done with it.
    """

    ALLOW_SELECT = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="table.up",
                tooltip="Highlight the row above"),
        Binding("down", "cursor_down", "Down", show=False, id="table.down",
                tooltip="Highlight the row below"),
        Binding("pageup", "page_up", "Page up", show=False, id="table.page-up",
                tooltip="Move the cursor one screen up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="table.page-down",
                tooltip="Move the cursor one screen down"),
        Binding("home,ctrl+home", "first_row", "First", show=False, id="table.first",
                tooltip="Highlight the first row"),
        Binding("end,ctrl+end", "last_row", "Last", show=False, id="table.last",
                tooltip="Highlight the last row"),
        Binding("enter", "select_row", "Select", show=False, id="table.select",
                tooltip="Edit the highlighted provider"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "selection-table--header",
        "selection-table--cursor",
        "selection-table--locked",
        "selection-table--unset",
        "selection-table--marked",
        "selection-table--flash",
        "selection-table--invalid",
    }

    DEFAULT_CSS = """
    SelectionTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .selection-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .selection-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .selection-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .selection-table--locked { text-style: dim; }
        /* not $text-muted: blended as a partial style it turns white in light themes */
        & > .selection-table--unset { color: $foreground-muted; }
        & > .selection-table--marked { color: $accent; text-style: bold; }
        & > .selection-table--flash { background: $warning 40%; text-style: bold; }
        & > .selection-table--invalid { color: $error; text-style: bold; }
    }
    """

    class RowHighlighted(Message):
        """The cursor is on another row (or on the same row showing another provider)."""

        def __init__(self, table: SelectionTable, cursor_row: int, provider: str | None) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row
            self.provider = provider

        @property
        def control(self) -> SelectionTable:
            return self.table

    class RowSelected(Message):
        """Enter, or a click on the highlighted row: the operator wants to act on it."""

        def __init__(self, table: SelectionTable, cursor_row: int, provider: str) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row
            self.provider = provider

        @property
        def control(self) -> SelectionTable:
            return self.table

    class HeaderSelected(Message):
        """A click on a column title (one of :data:`COLUMNS`)."""

        def __init__(self, table: SelectionTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

        @property
        def control(self) -> SelectionTable:
            return self.table

    def __init__(self, *, clock: Callable[[], datetime], id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._rows: dict[str, _Row] = {}
        self._order: list[str] = []  # the visible providers, in display order
        self._index: dict[str, int] = {}  # provider -> position in _order
        self._marked: set[str] = set()
        # Entries the catalog rejects (or no longer knows), as the store judged them.
        self._problems: Mapping[str, EntryProblem] = {}
        self._widths = ColumnWidths.for_width(80)
        self._cursor = 0
        self._announced: tuple[int, str | None] | None = None
        # Rendered rows without the cursor, for the base style they were drawn with;
        # only rows that were on screen are ever here.
        self._strips: LRUCache[str, Strip] = LRUCache(1024)
        self._strips_style: Style | None = None
        self._drawn_at: dict[str, datetime] = {}  # when each cached row was drawn
        self._base_style = Style()
        self.filter_text = ""
        self.row_order: SortOrder = "provider"

    # -- what the screen asks -------------------------------------------------------------
    @property
    def highlighted_provider(self) -> str | None:
        return self._order[self._cursor] if self._order else None

    @property
    def cursor_row(self) -> int:
        """Position of the highlighted row among the visible rows."""
        return self._cursor

    @property
    def row_count(self) -> int:
        """How many rows the filter lets through."""
        return len(self._order)

    def get_row_index(self, provider: str) -> int:
        """Position of ``provider`` among the visible rows; KeyError if it is filtered out."""
        return self._index[provider]

    def selection_of(self, provider: str) -> Selection | None:
        row = self._rows.get(provider)
        return row.selection if row else None

    def problem_of(self, provider: str) -> EntryProblem | None:
        """Why the stored entry of ``provider`` is not (or not quite) what the proxy serves."""
        return self._problems.get(provider)

    @property
    def problem_count(self) -> int:
        return len(self._problems)

    @property
    def provider_count(self) -> int:
        return len(self._rows)

    def providers(self) -> list[str]:
        """Every provider the table knows, shown or filtered out."""
        return list(self._rows)

    def visible_providers(self) -> list[str]:
        return list(self._order)

    def is_flashing(self, provider: str) -> bool:
        row = self._rows.get(provider)
        return row is not None and row.flashing

    @property
    def marked_count(self) -> int:
        return len(self._marked)

    @property
    def marked(self) -> list[str]:
        """Marked providers in the table's sort order, shown or filtered out (kept as a
        set: a 10,000-row scan per keypress would be felt)."""
        return sorted(self._marked, key=self._sort_key())

    def providers_on_screen(self) -> list[str]:
        """The providers whose rows the viewport shows now, top to bottom."""
        top = self.scroll_offset.y
        return self._order[top:top + max(self._body_height(), 0)]

    def age_of(self, provider: str) -> str:
        """The age the row of ``provider`` shows (or will show), for the detail line: the
        table and the line under it never disagree."""
        row = self._rows.get(provider)
        if row is None or row.selection is None:
            return DASH
        drawn = self._drawn_at.get(provider)
        return relative_time(row.selection.last_updated, drawn or self._clock())

    def row_text(self, provider: str) -> str:
        """The row of ``provider`` as drawn (without the cursor), for tests and tools."""
        return self._row_strip(provider).text

    # -- loading and live changes ---------------------------------------------------------
    def load(self, providers: Iterable[str], snapshot: Mapping[str, Selection]) -> None:
        """Fill the table once: the catalog's providers plus every one in the snapshot."""
        names = dict.fromkeys(providers)
        names.update(dict.fromkeys(snapshot))
        self._rows = {p: _Row(snapshot.get(p)) for p in names}
        self._marked.clear()
        self._strips.clear()
        self._rebuild(keep=None)

    def apply(self, snapshot: Mapping[str, Selection], providers: Iterable[str] | None = None
              ) -> list[str]:
        """Show ``snapshot`` for ``providers`` (all when None); returns the rows that changed.

        Rows are updated in place; a provider new to the table is added, one that is
        neither in the catalog nor selected any more keeps its row with a dash.
        """
        candidates = list(snapshot.keys() | self._rows.keys()) if providers is None \
            else list(providers)
        changed: list[str] = []
        leaving: set[str] = set()
        arriving: list[str] = []
        for provider in candidates:
            selection = snapshot.get(provider)
            row = self._rows.get(provider)
            moves = False
            if row is None:
                self._rows[provider] = _Row(selection)
            elif row.selection == selection:
                continue
            else:
                moves = self._sort_value_moves(row.selection, selection)
                row.selection = selection
            changed.append(provider)
            self._strips.discard(provider)
            shown = provider in self._index
            matches = self._matches(provider)
            if shown and (moves or not matches):
                leaving.add(provider)
            if matches and (moves or not shown):
                arriving.append(provider)
            if shown and matches and not moves:
                self._refresh_row(provider)
        if leaving or arriving:
            self._reorder(leaving, arriving)
        return changed

    def set_problems(self, problems: Mapping[str, EntryProblem]) -> None:
        """Mark the rows whose stored entry the store rejects or keeps serving by drift."""
        before = self._problems
        changed = [p for p in before.keys() | problems.keys()
                   if before.get(p) != problems.get(p)]
        self._problems = dict(problems)
        for provider in changed:
            if provider in self._rows:
                self._strips.discard(provider)
                self._refresh_row(provider)

    def refresh_ages(self) -> None:
        """Re-render the "updated" column (ages grow while nothing changes): only the rows
        on screen are drawn again, the others when they are scrolled to."""
        self._strips.clear()
        self.refresh()

    # -- marks, flashes, filter, sort -----------------------------------------------------
    def toggle_mark(self, provider: str) -> bool:
        row = self._rows[provider]
        row.marked = not row.marked
        if row.marked:
            self._marked.add(provider)
        else:
            self._marked.discard(provider)
        self._row_changed(provider)
        return row.marked

    def unmark(self, provider: str) -> None:
        if provider in self._marked:
            self.toggle_mark(provider)

    def clear_marks(self) -> None:
        for provider in list(self._marked):
            self._rows[provider].marked = False
            self._row_changed(provider)
        self._marked.clear()

    def flash(self, provider: str, seconds: float = 1.5) -> None:
        """Highlight a row briefly (a change arrived from elsewhere)."""
        row = self._rows.get(provider)
        if row is None:
            return
        row.flashing = True
        self._row_changed(provider)

        def fade() -> None:
            row.flashing = False
            self._row_changed(provider)

        self.set_timer(seconds, fade, name=f"flash {provider}")

    def set_filter(self, text: str) -> None:
        if text == self.filter_text:
            return
        self.filter_text = text
        self._rebuild(keep=self.highlighted_provider)

    def set_sort(self, order: SortOrder) -> None:
        self.row_order = order
        self._rebuild(keep=self.highlighted_provider)

    def set_widths(self, widths: ColumnWidths) -> None:
        """Fit the columns to a new terminal width (rows on screen are drawn again)."""
        if widths == self._widths:
            return
        self._widths = widths
        self._strips.clear()
        self._update_virtual_size()
        self.refresh()

    # -- the cursor -----------------------------------------------------------------------
    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Highlight the visible row at position ``row`` (clamped to the table)."""
        target = max(0, min(row, len(self._order) - 1))
        if target != self._cursor:
            self._refresh_index(self._cursor)
            self._cursor = target
            self._refresh_index(target)
        if scroll:
            self.scroll_to_cursor(animate=animate)
        self._announce_cursor()

    def scroll_to_cursor(self, *, animate: bool = False) -> None:
        """Scroll as little as needed for the highlighted row to be on screen."""
        body = self._body_height()
        if body <= 0:
            # Not laid out yet: the height the rows get is known after the next refresh.
            self.call_after_refresh(self._scroll_after_layout)
            return
        top = self.scroll_offset.y
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=animate, force=True)
        elif self._cursor >= top + body:
            self.scroll_to(y=self._cursor - body + 1, animate=animate, force=True)

    def _scroll_after_layout(self) -> None:
        if self._body_height() > 0:
            self.scroll_to_cursor()

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - max(self._body_height(), 1))

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + max(self._body_height(), 1))

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_select_row(self) -> None:
        provider = self.highlighted_provider
        if provider is not None:
            self.post_message(self.RowSelected(self, self._cursor, provider))

    async def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:
            column = self._column_at(offset.x + self.scroll_offset.x)
            if column is not None:
                self.post_message(self.HeaderSelected(self, column))
            return
        index = self.scroll_offset.y + offset.y - 1
        if not 0 <= index < len(self._order):
            return
        if index == self._cursor:
            self.action_select_row()
        else:
            self.move_cursor(row=index)

    def on_resize(self, event: events.Resize) -> None:
        if self._order:
            self.call_after_refresh(self._scroll_after_layout)

    def on_focus(self, event: events.Focus) -> None:
        self._refresh_index(self._cursor)  # the cursor has its own colours when focused

    def on_blur(self, event: events.Blur) -> None:
        self._refresh_index(self._cursor)

    # -- drawing --------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        # One base style per paint: it changes with focus and theme, and every cached
        # row was drawn over the one it was made with.
        self._base_style = self.rich_style
        if self._strips_style != self._base_style:
            self._strips.clear()
            self._strips_style = self._base_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        fill = self._base_style
        if y == 0:
            fill = self._base_style + self.get_component_rich_style("selection-table--header")
            strip = self._strip(_TITLES, fill, untrusted=False)
        else:
            index = scroll_y + y - 1
            if index >= len(self._order):
                return Strip.blank(width, fill)
            provider = self._order[index]
            if index == self._cursor:
                # The row's cached text restyled: the cursor spans the whole width, a row's
                # own style (dim when locked, the flash) still shows through it, and its
                # age is the one its neighbours were drawn with, not a newer one.
                cursor = self.get_component_rich_style("selection-table--cursor")
                fill = self._base_style + cursor
                style = fill + self._row_style(self._rows[provider], provider, on_cursor=True)
                cached = self._row_strip(provider)
                strip = Strip([Segment(segment.text, style) for segment in cached],
                              cached.cell_length)
            else:
                strip = self._row_strip(provider)
        return strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, fill)

    def _row_strip(self, provider: str) -> Strip:
        cached = self._strips.get(provider)
        if cached is not None:
            return cached
        row = self._rows[provider]
        self._drawn_at[provider] = self._clock()
        style = self._base_style + self._row_style(row, provider)
        strip = self._strip(self._values(provider, row), style)
        self._strips.set(provider, strip)
        return strip

    def _values(self, provider: str, row: _Row) -> tuple[str | None, ...]:
        """What each column shows for ``row``, in the order of :data:`COLUMNS`."""
        mark = _MARK if row.marked else " "
        selection = row.selection
        if selection is None:
            return (mark, provider, DASH, "", DASH, "")
        problem = self._problems.get(provider)
        model = selection.model_name if problem is None else \
            f"{_INVALID_MARKS[problem.kind]} {selection.model_name}"
        return (mark, provider, model, _LOCKED if selection.locked else "",
                relative_time(selection.last_updated,
                              self._drawn_at.get(provider) or self._clock()),
                short_actor(clean(selection.updated_by)))

    def _strip(self, values: tuple[str | None, ...], style: Style, *,
               untrusted: bool = True) -> Strip:
        """One table line: each value cleaned of control characters, cut or padded to its
        column, as plain text (a name like ``[red]`` stays literal)."""
        segments: list[Segment] = []
        pad = " " * _PADDING
        for value, width in zip(values, self._widths.cells(), strict=True):
            cell = safe_text(value, limit=width, placeholder=DASH if value is None else "") \
                if untrusted else Text(value or "", no_wrap=True, end="")
            cell.truncate(width, overflow="ellipsis", pad=True)
            segments.append(Segment(pad + cell.plain + pad, style))
        return Strip(segments, self._widths.total)

    def _row_style(self, row: _Row, provider: str, *, on_cursor: bool = False) -> Style:
        names: list[str] = []
        if row.selection is None:
            # Not under the cursor: its muted colour is meant for the table's background,
            # and on a light theme's cursor it would be dark on dark.
            if not on_cursor:
                names.append("selection-table--unset")
        elif row.selection.locked:
            names.append("selection-table--locked")
        if row.marked:
            names.append("selection-table--marked")
        if row.selection is not None and provider in self._problems:
            names.append("selection-table--invalid")
        if row.flashing:
            names.append("selection-table--flash")
        style = Style()
        for name in names:
            style += self.get_component_rich_style(name, partial=True)
        return style

    # -- internals ------------------------------------------------------------------------
    def _matches(self, provider: str) -> bool:
        needle = self.filter_text.casefold()
        if not needle:
            return True
        if needle in provider.casefold():
            return True
        selection = self._rows[provider].selection
        if selection is None:
            return False
        return needle in selection.model_name.casefold() or \
            needle in (selection.updated_by or "").casefold()

    def _sort_key(self) -> Callable[[str], tuple[object, ...]]:
        return _SORT_KEYS[self.row_order](self._rows)

    def _sort_value_moves(self, old: Selection | None, new: Selection | None) -> bool:
        if self.row_order == "model":
            return (old.model_name if old else None) != (new.model_name if new else None)
        if self.row_order == "updated":
            return (old.last_updated if old else None) != (new.last_updated if new else None)
        return False

    def _rebuild(self, *, keep: str | None) -> None:
        """Lay the visible rows down afresh: a new filter, sort order or set of rows."""
        self._order = sorted((p for p in self._rows if self._matches(p)), key=self._sort_key())
        self._after_reorder(keep)

    def _reorder(self, leaving: set[str], arriving: list[str]) -> None:
        """Move the rows whose sort value or filter match changed; the others keep their
        relative order, so a few changes cost a few binary searches, not a sort."""
        keep = self.highlighted_provider
        if len(arriving) > _INCREMENTAL_LIMIT:
            self._rebuild(keep=keep)
            return
        if leaving:
            self._order = [p for p in self._order if p not in leaving]
        key = self._sort_key()
        for provider in arriving:
            insort(self._order, provider, key=key)
        self._after_reorder(keep)

    def _after_reorder(self, keep: str | None) -> None:
        self._index = {provider: n for n, provider in enumerate(self._order)}
        self._update_virtual_size()
        if keep is not None and keep in self._index:
            self._cursor = self._index[keep]
        else:
            self._cursor = max(0, min(self._cursor, len(self._order) - 1))
        self.refresh()
        if self._order:
            self.scroll_to_cursor()
        self._announce_cursor()

    def _announce_cursor(self) -> None:
        current = (self._cursor, self.highlighted_provider)
        if current != self._announced:
            self._announced = current
            self.post_message(self.RowHighlighted(self, *current))

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self._widths.total, len(self._order) + 1)

    def _body_height(self) -> int:
        """Lines available to rows (the header takes one)."""
        return self.scrollable_content_region.height - 1

    def _row_changed(self, provider: str) -> None:
        self._strips.discard(provider)
        self._refresh_row(provider)

    def _refresh_row(self, provider: str) -> None:
        index = self._index.get(provider)
        if index is not None:
            self._refresh_index(index)

    def _refresh_index(self, index: int) -> None:
        """Repaint the line of the row at ``index``, if it is on screen."""
        y = index - self.scroll_offset.y + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _column_at(self, x: int) -> str | None:
        start = 0
        for column, width in zip(COLUMNS, self._widths.cells(), strict=True):
            start += width + 2 * _PADDING
            if x < start:
                return column
        return None
