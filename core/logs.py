"""The core's loggers, with the logging module imported when a line is first logged.

``logging`` (with threading, traceback and weakref) was a sixth of ``modelboard get``'s
start, which logs nothing when all is well. Each module keeps its one line::

    log = logger(__name__)

and ``log`` is ``logging.getLogger(__name__)`` from its first use on. An application that
decides where the core's lines go (the command line does, for one run) registers that with
``when_logging``: it runs at once if logging is imported already, else just before the
core's first line.
"""

from __future__ import annotations

import sys
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from typing import Any

__all__ = ["forget", "logger", "start", "when_logging"]

_waiting: list[Callable[[], None]] = []
_started = False
_lock = threading.Lock()  # a watcher thread may log its first line as the main thread does


class _Logger:
    """Stands for ``logging.getLogger(name)`` and hands every attribute on to it, so that
    a call is made from its caller's frame (``%(lineno)s`` stays right)."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: logging.Logger | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            self._logger = start().getLogger(self._name)
        return getattr(self._logger, attribute)


if TYPE_CHECKING:
    def logger(name: str) -> logging.Logger:
        """The logger called ``name``, its logging module imported on first use."""
else:
    logger = _Logger


def start() -> Any:
    """Import logging now (once), with what ``when_logging`` waits for; return the module."""
    global _started
    import logging

    with _lock:
        if not _started:
            _started = True
            # A library logs, the application decides where to: without logging configured,
            # nothing reaches stderr (Python's last-resort handler would print bare lines).
            logging.getLogger("modelboard").addHandler(logging.NullHandler())
        while _waiting:
            _waiting.pop(0)()
    return logging


def when_logging(configure: Callable[[], None]) -> None:
    """Run ``configure`` once logging is in use: now if it is imported, else before the
    core's first line (or ``start()``); ``forget`` it to cancel."""
    with _lock:
        _waiting.append(configure)
    if _started or "logging" in sys.modules:
        start()


def forget(configure: Callable[[], None]) -> None:
    """Cancel ``configure`` if it has not run."""
    with _lock:
        if configure in _waiting:
            _waiting.remove(configure)
