"""The main table: one keyed row per provider, changed in place as selections change.

Rows are keyed by provider. A change touches only the cells whose text moved, inside
``app.batch_update()``, so the cursor stays where it was and a 10,000-row table
repaints one row, not all of them. Only a new filter or sort order replaces the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from modelboard.core import Selection

from .display import DASH, clean, relative_time, safe_text, short_actor

__all__ = ["COLUMNS", "SORT_ORDERS", "ColumnWidths", "SelectionTable", "SortOrder"]

SortOrder = Literal["provider", "model", "updated"]
SORT_ORDERS: tuple[SortOrder, ...] = ("provider", "model", "updated")
COLUMNS = ("mark", "provider", "model", "lock", "updated", "by")
_MARK = "●"
_LOCKED = "locked"


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


class _ProviderCell(Text):
    """The provider cell, carrying its row's provider so sorting needs no lookup by label."""

    def __init__(self, provider: str, text: Text) -> None:
        super().__init__(text.plain, style=text.style, no_wrap=True, end="")
        self.provider = provider


@dataclass(slots=True)
class _Row:
    selection: Selection | None
    marked: bool = False
    flashing: bool = False


class SelectionTable(DataTable[Text]):
    """Providers with their model, lock, age and author; see the module docstring.

    The table owns what is shown (filter, sort, marks, flashes); the screen owns
    what is done with it.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "selection-table--locked",
        "selection-table--unset",
        "selection-table--marked",
        "selection-table--flash",
    }

    DEFAULT_CSS = """
    SelectionTable > .selection-table--locked { text-style: dim; }
    SelectionTable > .selection-table--unset { color: $text-muted; }
    SelectionTable > .selection-table--marked { color: $accent; text-style: bold; }
    SelectionTable > .selection-table--flash { background: $warning 40%; text-style: bold; }
    """

    def __init__(self, *, clock: Callable[[], datetime], id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._clock = clock
        self._rows: dict[str, _Row] = {}
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._marked: set[str] = set()
        self._widths = ColumnWidths.for_width(80)
        self.filter_text = ""
        self.sort_order: SortOrder = "provider"

    # -- what the screen asks -------------------------------------------------------------
    @property
    def highlighted_provider(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return key.value

    def selection_of(self, provider: str) -> Selection | None:
        row = self._rows.get(provider)
        return row.selection if row else None

    @property
    def provider_count(self) -> int:
        return len(self._rows)

    def providers(self) -> list[str]:
        """Every provider the table knows, shown or filtered out."""
        return list(self._rows)

    def visible_providers(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def is_flashing(self, provider: str) -> bool:
        row = self._rows.get(provider)
        return row is not None and row.flashing

    @property
    def marked_count(self) -> int:
        return len(self._marked)

    @property
    def marked(self) -> list[str]:
        """Marked providers, in table order (kept as a set: a 10,000-row scan per keypress
        would be felt)."""
        return [p for p in self._rows if p in self._marked]

    # -- loading and live changes ---------------------------------------------------------
    def load(self, providers: Iterable[str], snapshot: Mapping[str, Selection]) -> None:
        """Fill the table once: the catalog's providers plus every one in the snapshot."""
        names = dict.fromkeys(providers)
        names.update(dict.fromkeys(snapshot))
        self._rows = {p: _Row(snapshot.get(p)) for p in names}
        self._marked.clear()
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
        reorder = False
        keep = self.highlighted_provider
        with self.app.batch_update():
            for provider in candidates:
                selection = snapshot.get(provider)
                row = self._rows.get(provider)
                if row is None:
                    self._rows[provider] = _Row(selection)
                elif row.selection == selection:
                    continue
                else:
                    reorder |= self._sort_value_moves(row.selection, selection)
                    row.selection = selection
                changed.append(provider)
                reorder |= self._place(provider)
            if reorder:
                self._sort(keep)
            elif keep is not None and self.highlighted_provider != keep:
                self._restore_cursor(keep)  # a row above it left the filter
        return changed

    def refresh_ages(self) -> None:
        """Re-render the "updated" column (ages grow while nothing changes)."""
        with self.app.batch_update():
            for provider in self.visible_providers():
                self._render_row(provider)

    # -- marks, flashes, filter, sort -----------------------------------------------------
    def toggle_mark(self, provider: str) -> bool:
        row = self._rows[provider]
        row.marked = not row.marked
        if row.marked:
            self._marked.add(provider)
        else:
            self._marked.discard(provider)
        self._render_row(provider)
        return row.marked

    def clear_marks(self) -> None:
        for provider in list(self._marked):
            self._rows[provider].marked = False
            self._render_row(provider)
        self._marked.clear()

    def flash(self, provider: str, seconds: float = 1.5) -> None:
        """Highlight a row briefly (a change arrived from elsewhere)."""
        row = self._rows.get(provider)
        if row is None:
            return
        row.flashing = True
        self._render_row(provider)

        def fade() -> None:
            row.flashing = False
            self._render_row(provider)

        self.set_timer(seconds, fade, name=f"flash {provider}")

    def set_filter(self, text: str) -> None:
        if text == self.filter_text:
            return
        self.filter_text = text
        self._rebuild(keep=self.highlighted_provider)

    def set_sort(self, order: SortOrder) -> None:
        self.sort_order = order
        self._sort(self.highlighted_provider)

    def set_widths(self, widths: ColumnWidths) -> None:
        """Fit the columns to a new terminal width (re-renders every row)."""
        if widths == self._widths and self.columns:
            return
        self._widths = widths
        keep = self.highlighted_provider
        self.clear(columns=True)
        self._add_columns()
        self._shown.clear()
        self._rebuild(keep=keep)

    # -- internals ------------------------------------------------------------------------
    def on_mount(self) -> None:
        if not self.columns:
            self._add_columns()

    def _add_columns(self) -> None:
        widths = self._widths
        self.add_column(" ", key="mark", width=1)
        self.add_column("provider", key="provider", width=widths.provider)
        self.add_column("model", key="model", width=widths.model)
        self.add_column("lock", key="lock", width=6)
        self.add_column("updated", key="updated", width=8)
        self.add_column("by", key="by", width=widths.by)

    def _matches(self, provider: str) -> bool:
        needle = self.filter_text.casefold()
        if not needle:
            return True
        selection = self._rows[provider].selection
        haystack = [provider]
        if selection is not None:
            haystack += [selection.model_name, selection.updated_by or ""]
        return any(needle in value.casefold() for value in haystack)

    def _sort_key(self, provider: str) -> tuple[object, ...]:
        selection = self._rows[provider].selection
        if self.sort_order == "model":
            model = selection.model_name.casefold() if selection else ""
            return (selection is None, model, provider.casefold())
        if self.sort_order == "updated":
            stamp = selection.last_updated if selection else None
            newest_first = -stamp.timestamp() if stamp is not None else float("inf")
            return (newest_first, provider.casefold())
        return (provider.casefold(),)

    def _sort_value_moves(self, old: Selection | None, new: Selection | None) -> bool:
        if self.sort_order == "model":
            return (old.model_name if old else None) != (new.model_name if new else None)
        if self.sort_order == "updated":
            return (old.last_updated if old else None) != (new.last_updated if new else None)
        return False

    def _place(self, provider: str) -> bool:
        """Show, hide or re-render one row; True if a row was added (order must be fixed)."""
        shown = provider in self._shown
        if self._matches(provider):
            if shown:
                self._render_row(provider)
                return False
            cells = self._cells(provider)
            self.add_row(*cells, key=provider)
            self._shown[provider] = cells
            return True
        if shown:
            self.remove_row(provider)
            del self._shown[provider]
        return False

    def _rebuild(self, *, keep: str | None) -> None:
        # A new filter replaces most rows at once; removing them one by one costs
        # O(rows) each in DataTable, so the visible rows are laid down afresh.
        with self.app.batch_update():
            self.clear()
            self._shown.clear()
            visible = sorted((p for p in self._rows if self._matches(p)), key=self._sort_key)
            for provider in visible:
                cells = self._cells(provider)
                self.add_row(*cells, key=provider)
                self._shown[provider] = cells
            self._restore_cursor(keep)

    def _sort(self, keep: str | None) -> None:
        self.sort("provider", key=lambda cell: self._sort_key(cell.provider))
        self._restore_cursor(keep)

    def _restore_cursor(self, provider: str | None) -> None:
        if provider is None or provider not in self._shown:
            return
        try:
            index = self.get_row_index(provider)
        except RowDoesNotExist:
            return
        self.move_cursor(row=index, animate=False, scroll=True)

    def _render_row(self, provider: str) -> None:
        before = self._shown.get(provider)
        if before is None:
            return
        after = self._cells(provider)
        for column, old, new in zip(COLUMNS, before, after, strict=True):
            if old.plain != new.plain or old.style != new.style:
                self.update_cell(provider, column, new)
        self._shown[provider] = after

    def _cells(self, provider: str) -> tuple[Text, ...]:
        row = self._rows[provider]
        selection = row.selection
        style = self._row_style(row)
        widths = self._widths
        mark = Text(_MARK if row.marked else " ", style=style, end="")
        name = _ProviderCell(provider, safe_text(provider, limit=widths.provider, style=style))
        if selection is None:
            return (mark, name, Text(DASH, style=style, end=""), Text("", end=""),
                    Text(DASH, style=style, end=""), Text("", end=""))
        age = relative_time(selection.last_updated, self._clock())
        return (
            mark,
            name,
            safe_text(selection.model_name, limit=widths.model, style=style),
            Text(_LOCKED if selection.locked else "", style=style, end=""),
            Text(age, style=style, end=""),
            safe_text(short_actor(clean(selection.updated_by)), limit=widths.by, style=style),
        )

    def _row_style(self, row: _Row) -> Style:
        names: list[str] = []
        if row.selection is None:
            names.append("selection-table--unset")
        elif row.selection.locked:
            names.append("selection-table--locked")
        if row.marked:
            names.append("selection-table--marked")
        if row.flashing:
            names.append("selection-table--flash")
        style = Style()
        for name in names:
            style += self.get_component_rich_style(name, partial=True)
        return style
