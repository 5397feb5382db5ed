"""``modelboard watch``: one line per change until interrupted."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..errors import ModelboardError
from ..models import ChangeEvent, ProviderChange, utc_now
from ..text import escape, fit
from .output import LINE_WIDTH, Terminal, time_text, to_json
from .session import EXIT_INTERRUPTED, EXIT_OK, Session, quiet_log
from .shapes import Problem, change_json

__all__ = ["ChangePrinter", "cmd_watch"]


class ChangePrinter:
    """A store subscriber printing one line per provider change (or per error)."""

    def __init__(self, terminal: Terminal, location: str, *, as_json: bool,
                 on_closed_output: Callable[[], None]) -> None:
        self.terminal = terminal
        self.location = location
        self.as_json = as_json
        self.on_closed_output = on_closed_output
        self._broken = False  # the last event was a load error

    def __call__(self, event: ChangeEvent) -> None:
        try:
            if event.error is not None:
                self.error(event.error)
                return
            if self._broken or not event.changes:
                self._broken = False
                self._emit({"event": "recovered", "revision": event.new.revision},
                           f"{self.location}: readable again")
            for change in event.changes:
                self._emit(self._change_json(change, event), self._change_text(change))
            self.terminal.flush()
        except BrokenPipeError:  # the reader went away (| head)
            self.on_closed_output()

    def error(self, error: Exception) -> None:
        problem = (Problem.from_error(error, file=self.location)
                   if isinstance(error, ModelboardError) else Problem(self.location, str(error)))
        record: dict[str, Any] = {"event": "error", "problem": problem.to_json()}
        self._broken = True
        self._emit(record, f"error: {error}; keeping the last good state")
        self.terminal.flush()

    def _emit(self, record: dict[str, Any], text: str) -> None:
        now = utc_now()
        if self.as_json:
            self.terminal.line(to_json({"seen_at": now.isoformat(), **record}, lines=True))
        else:
            self.terminal.line(f"{time_text(now, seconds=True)}  {escape(text)}")

    @staticmethod
    def _change_json(change: ProviderChange, event: ChangeEvent) -> dict[str, Any]:
        return {"event": "change", **change_json(change), "revision": event.new.revision,
                "source": event.source}

    @staticmethod
    def _change_text(change: ProviderChange) -> str:
        # The time before it takes 21 columns; the core words the change.
        return fit(change.describe(), LINE_WIDTH - 21)


def cmd_watch(session: Session) -> int:
    stopped = threading.Event()
    exit_code = [EXIT_OK]

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        exit_code[0] = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK
        stopped.set()

    def on_closed_output() -> None:
        # Nobody reads any more: stop, and keep the exit-time flush from complaining.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    store = session.open(read_only=True)
    printer = ChangePrinter(session.terminal, store.location, as_json=session.as_json,
                            on_closed_output=on_closed_output)
    if store.load_error is not None:
        printer.error(store.load_error)
    # The printer reports bad files itself; the log would say it a second time.
    with quiet_log(logging.ERROR):
        unsubscribe = store.subscribe(printer)
        store.start_watching()
        session.terminal.note(f"watching {store.location} "
                              f"(revision {store.snapshot.revision}); Ctrl-C to stop")
        session.terminal.err.flush()
        try:
            while not stopped.wait(timeout=3600):
                pass
        finally:
            unsubscribe()
            store.close()
    return exit_code[0]
