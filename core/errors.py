"""Exceptions raised by the core; every message is one line that says what and where."""

from __future__ import annotations

from .text import escape

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "LockedError",
    "ModelboardError",
    "NotFoundError",
    "ReadOnlyError",
    "ValidationError",
    "describe_lock",
]


class ModelboardError(Exception):
    """Base class of every error the core raises on purpose."""


class ValidationError(ModelboardError, ValueError):
    """A provider or model the catalog does not accept, or a malformed name."""

    def __init__(self, message: str, *, provider: str | None = None,
                 suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.provider = provider
        self.suggestions = suggestions


class ConfigurationError(ModelboardError):
    """The selections file (or a catalog file) cannot be read, parsed or written.

    ``path``, ``line`` and ``column`` locate the problem when it is known.
    """

    def __init__(self, reason: str, *, path: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.column = column
        super().__init__(escape(self.location_prefix() + reason))

    def location_prefix(self) -> str:
        if self.path is None:
            return ""
        if self.line is None:
            return f"{self.path}: "
        return f"{self.path}:{self.line}:{self.column or 1}: "


class LockedError(ModelboardError):
    """The provider's selection is locked (``editable`` is false)."""

    def __init__(self, provider: str, *, locked_by: str | None = None,
                 reason: str | None = None) -> None:
        self.provider = provider
        self.locked_by = locked_by
        self.reason = reason
        #: ``locked by alice: launch week``, as every lock is worded (see describe_lock).
        self.detail = describe_lock(locked_by, reason)
        super().__init__(f"{provider}: selection is {self.detail}; unlock it first")


class ConflictError(ModelboardError):
    """Someone else changed the same provider since this writer last read it."""

    def __init__(self, provider: str, *, theirs: str | None, mine: str | None,
                 theirs_by: str | None = None) -> None:
        self.provider = provider
        self.theirs = theirs
        self.mine = mine
        self.theirs_by = theirs_by
        by = f" by {escape(theirs_by)}" if theirs_by else ""
        super().__init__(
            f"{provider}: changed{by} to {_show(theirs)} since you read it; "
            f"your change to {_show(mine)} was not applied"
        )


class NotFoundError(ModelboardError, KeyError):
    """The provider has no selection."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        super().__init__(provider)

    def __str__(self) -> str:
        return f"{self.provider}: no model selected"


class ReadOnlyError(ModelboardError):
    """A write was attempted on a store opened read-only."""


class BackendUnavailableError(ModelboardError):
    """The storage backend cannot be reached (a Redis server down, say)."""


def describe_lock(locked_by: str | None, reason: str | None) -> str:
    """How a lock is worded everywhere: ``locked by alice@ops: launch week``.

    Who and why come from a file anyone may have edited: both are made one safe line.
    """
    detail = f"locked by {escape(locked_by)}" if locked_by else "locked"
    return detail + (f": {escape(reason)}" if reason else "")


def _show(value: str | None) -> str:
    return "(nothing)" if value is None else repr(value)
