"""One run of a command: its options, its output, and the store and catalog it opens."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..logs import forget, when_logging
from ..opening import (
    CATALOG_ENV_VAR,
    ENV_VAR,
    open_store,
    resolve_catalog,
    resolve_location,
)
from ..preferences import Preferences, load_preferences
from ..text import escape
from .output import Terminal, to_json
from .shapes import error_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import logging

    from ..catalog import Catalog
    from ..store import SelectionStore

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "Handler", "Session",
           "cli_logging", "quiet_log", "with_preferences"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
#: What a shell reports for a process stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def with_preferences(args: argparse.Namespace) -> Preferences:
    """Fill the options the command line left open from the preferences file.

    The order, for each: the flag, else its environment variable, else the file, else
    the built-in default (the actor has no variable of its own: the file comes before
    the automatic user@host). Raises ConfigurationError for a bad file.
    """
    preferences = load_preferences()
    if not args.file and not os.environ.get(ENV_VAR):
        args.file = preferences.file
    if args.catalog is None and not os.environ.get(CATALOG_ENV_VAR):
        args.catalog = preferences.catalog
    if args.actor is None:
        args.actor = preferences.actor
    return preferences


class Session:
    """The parsed options, and the store and catalog they point at, opened on demand."""

    def __init__(self, args: argparse.Namespace, terminal: Terminal,
                 preferences: Preferences | None = None) -> None:
        self.args = args
        self.terminal = terminal
        self.preferences = preferences
        self.location = resolve_location(args.file)
        self._catalog: Catalog | None = None

    @property
    def as_json(self) -> bool:
        """``--json``: the outcome, refusals included, is one JSON document on stdout."""
        return bool(getattr(self.args, "json", False))

    def print_json(self, value: object) -> None:
        self.terminal.line(to_json(value))

    def refuse(self, message: str, *, kind: str = "refused", code: int = EXIT_REFUSED) -> int:
        """Say why the command refused (JSON on stdout under ``--json``, else a line on
        stderr) and return its exit code."""
        if self.as_json:
            self.print_json(error_json(message, kind=kind, exit_code=code))
        else:
            self.terminal.error(message)
        return code

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = resolve_catalog(self.args.catalog)
        return self._catalog

    def open(self, *, read_only: bool, location: str | None = None) -> SelectionStore:
        """The store at ``location`` (default: the chosen one), load errors left to the caller."""
        # The store logs a bad file as it opens; the command reports it itself, once.
        with quiet_log(_CRITICAL):
            return open_store(location or self.location, catalog=self.catalog,
                              actor=self.args.actor, read_only=read_only)

    def open_for_reading(self) -> SelectionStore:
        """A read-only store (no lock file, nothing written); a bad file is refused."""
        store = self.open(read_only=True)
        if store.load_error is not None:
            raise store.load_error
        return store

    def open_for_writing(self) -> SelectionStore:
        """A writable store; a file that does not parse is refused, never overwritten."""
        if not self.args.read_only:
            # Checked read-only first: a writable store would copy a corrupt file aside
            # and start from the backup, which is right for a proxy, not for a refusal.
            self.open_for_reading().close()
        store = self.open(read_only=self.args.read_only)
        if store.load_error is not None:
            raise store.load_error
        return store


Handler = Callable[[Session], int]

# logging's levels, named here so that a command that logs nothing never imports it.
_NOTSET, _DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = 0, 10, 20, 30, 40, 50


class _Threshold:
    """The CLI handler's level, raised for a while by ``quiet_log`` (a logging filter)."""

    def __init__(self) -> None:
        self.floor = _NOTSET

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.floor


_threshold = _Threshold()


@contextmanager
def quiet_log(level: int) -> Iterator[None]:
    """Within ``with quiet_log(level)``, the command's own log handler shows ``level`` and
    above: a command that reports a problem itself keeps the log from saying it twice.

    Only the CLI's handler is filtered; no logger's level changes, so what a program that
    embeds the CLI logs elsewhere is untouched.
    """
    saved = _threshold.floor
    _threshold.floor = max(saved, level)
    try:
        yield
    finally:
        _threshold.floor = saved


@contextmanager
def cli_logging(*, quiet: int = 0, verbose: int = 0) -> Iterator[None]:
    """For one run: the core's log lines (a history line that could not be written) as
    one-liners on stderr; ``-q`` keeps errors only, ``-v`` adds what the core does, ``-vv``
    its details.

    Only the ``modelboard`` loggers are touched, never the root logger; and only for the
    run: the handler is removed and the ``modelboard`` logger's level and propagation are
    put back afterwards, so a program that calls ``main()`` keeps its own logging. All of
    it happens when logging is in use (see ``core.logs``): a run that logs nothing does
    not import it.
    """
    level = (_ERROR if quiet else _DEBUG if verbose > 1
             else _INFO if verbose else _WARNING)
    undo: list[Callable[[], None]] = []

    def install() -> None:
        import logging

        class CleanFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return escape(super().format(record))

        log = logging.getLogger("modelboard")  # the package's: every core module's lines
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(CleanFormatter("modelboard: %(message)s"))
        handler.setLevel(level)
        handler.addFilter(_threshold)
        saved_level, saved_propagate = log.level, log.propagate
        # The logger lets through what the handler shows (and no less than it let through).
        log.setLevel(level if saved_level == _NOTSET else min(level, saved_level))
        log.propagate = False  # the run's handler says it; a root handler would say it again

        def restore() -> None:
            log.removeHandler(handler)
            log.setLevel(saved_level)
            log.propagate = saved_propagate

        log.addHandler(handler)
        undo.append(restore)

    when_logging(install)
    try:
        yield
    finally:
        forget(install)
        for restore in undo:
            restore()
