"""The editor application and how it is opened from the command line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from modelboard.core import (
    ModelboardError,
    SelectionStore,
    open_store,
    resolve_location,
    write_problem,
)
from modelboard.core.models import utc_now
from modelboard.core.preferences import Preferences

from .preferences import apply_preferences
from .screen import MainScreen

__all__ = ["ModelboardApp", "open_for_editing", "run_editor"]


class ModelboardApp(App[int]):
    """The terminal editor over one store.

    ``clock`` gives "now" for the relative ages (fixed in tests and screenshots);
    ``watch=False`` leaves the table as loaded (snapshots); ``cursor_blink=False``
    keeps text cursors steady.
    """

    CSS_PATH = "modelboard.tcss"
    TITLE = "modelboard"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit", show=False,
                tooltip="Leave the editor (waits for a save in progress)"),
        # j/k as in most terminal tools, for whatever table or list has the focus (a
        # focused text field takes the letters as text first).
        Binding("j", "move_cursor('down')", "Down", id="move.down", show=False,
                tooltip="Move down in the table or list"),
        Binding("k", "move_cursor('up')", "Up", id="move.up", show=False,
                tooltip="Move up in the table or list"),
    ]

    def __init__(self, store: SelectionStore, *, read_only_reason: str | None = None,
                 clock: Callable[[], datetime] = utc_now, watch: bool = True,
                 cursor_blink: bool = True, preferences: Preferences | None = None) -> None:
        super().__init__()
        self.preferences = preferences
        self.store = store
        self.read_only_reason = read_only_reason
        self.clock = clock
        self.follow_changes = watch  # not ``watch``: that is Textual's DOMNode.watch()
        self.cursor_blink = cursor_blink

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(self.store, clock=self.clock, read_only_reason=self.read_only_reason,
                          watch=self.follow_changes)

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        # "Screenshot" writes a file into the working folder; an editor that promises to
        # write nothing in read-only mode should not offer it, and the others are kept.
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":
                yield command

    def on_mount(self) -> None:
        if self.preferences is not None:
            apply_preferences(self, self.preferences, save=self.read_only_reason is None)

    def action_move_cursor(self, direction: str) -> None:
        move = getattr(self.focused, f"action_cursor_{direction}", None)
        if callable(move):
            move()

    async def action_quit(self) -> None:
        main = self.main
        if main.saving:
            main.quit_when_saved = True
            self.notify("Waiting for the save in progress, then quitting.", markup=False)
            return
        self.exit(0)


def open_for_editing(location: str | None, *, catalog: str | None = None,
                     read_only: bool = False,
                     actor: str | None = None) -> tuple[SelectionStore, str | None]:
    """Open the store for the editor: read-only by request or because it cannot be written.

    Returns the store and, when read-only, why (shown on screen).
    """
    resolved = resolve_location(location)
    reason = "opened with --read-only" if read_only else None
    if not read_only:
        problem = write_problem(resolved)
        if problem is not None:
            read_only, reason = True, f"{problem}; opened read-only"
    # The editor watches, but it is not a proxy: it shows the fleet, it is not in it.
    store = open_store(resolved, catalog=catalog, read_only=read_only, actor=actor,
                       report=False)
    return store, reason


def run_editor(location: str | None, *, catalog: str | None = None,
               read_only: bool = False, actor: str | None = None,
               preferences: Preferences | None = None) -> int:
    """Run the editor in this terminal until the operator quits; returns the exit code.

    ``preferences`` (theme, keys) come from the user's file; tests leave them out.
    """
    try:
        store, reason = open_for_editing(location, catalog=catalog, read_only=read_only,
                                         actor=actor)
    except ModelboardError as error:
        print(f"modelboard: {error}", file=sys.stderr)
        return 2
    try:
        result = ModelboardApp(store, read_only_reason=reason, preferences=preferences).run()
    finally:
        store.close()
    return result if isinstance(result, int) else 0
