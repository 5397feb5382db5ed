"""What ``--json`` prints: every object the commands share, built in one place.

The shapes are documented in ``schema.json`` beside this module (a JSON Schema shipped
with the package) and in the README's "JSON output". One vocabulary everywhere: who made
a change is ``changed_by``, when is ``changed_at``; a numbered write is ``rev``, a content
hash ``revision``; a human sentence is ``message``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    LockedError,
    ModelboardError,
    NotFoundError,
    ReadOnlyError,
    ValidationError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..fleet import Reader, Waited
    from ..history import Revision
    from ..models import HistoryEntry, ProviderChange, Selection
    from ..serving import EntryProblem

__all__ = ["Problem", "catalog_entry_json", "change_json", "error_json", "error_kind",
           "history_entry_json", "reader_json", "revision_json", "selection_json", "wait_json"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a file, at a place: ``FILE:LINE:COL: message`` in text."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None

    @classmethod
    def from_error(cls, error: ModelboardError, *, file: str) -> Problem:
        """The problem ``error`` describes; ``file`` when the error names none."""
        if isinstance(error, ConfigurationError) and error.path is not None:
            column = (error.column or 1) if error.line is not None else None
            return cls(error.path, error.reason, error.line, column)
        return cls(file, str(error))

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.column or 1}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column,
                "message": self.message}


def selection_json(provider: str, selection: Selection,
                   problem: EntryProblem | None = None) -> dict[str, Any]:
    """A provider's selection; with ``problem``, why the catalog rejects what is stored."""
    data: dict[str, Any] = {
        "provider": provider,
        "model_name": selection.model_name,
        "editable": selection.editable,
        "locked": not selection.editable,
        "lock_reason": selection.lock_reason,
        "changed_at": selection.last_updated.isoformat() if selection.last_updated else None,
        "changed_by": selection.updated_by,
    }
    if problem is not None:
        data["catalog_problem"] = {"kind": problem.kind, "message": problem.reason}
    return data


def _stored_entry_json(provider: str, entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A history line's whole entry (as the file stores it) in the selection's shape."""
    if entry is None:
        return None
    editable = entry.get("editable", True) is not False
    return {"provider": provider, "model_name": entry.get("model_name"), "editable": editable,
            "locked": not editable, "lock_reason": entry.get("lock_reason"),
            "changed_at": entry.get("last_updated"), "changed_by": entry.get("updated_by")}


def change_json(change: ProviderChange) -> dict[str, Any]:
    """What happened to one provider: ``kind`` added, removed, model or lock."""
    def view(selection: Selection | None) -> dict[str, Any] | None:
        return None if selection is None else selection_json(change.provider, selection)

    return {"provider": change.provider, "kind": change.kind, "old": view(change.old),
            "new": view(change.new)}


def history_entry_json(entry: HistoryEntry) -> dict[str, Any]:
    """One line of the history: one provider in one write."""
    data: dict[str, Any] = {
        "rev": entry.number,
        "revision": entry.revision,
        "base_revision": entry.base_revision,
        "changed_at": entry.time.isoformat(),
        "changed_by": entry.actor,
        "provider": entry.provider,
        "action": entry.action,
        "old": entry.old,
        "new": entry.new,
        "reason": entry.reason,
    }
    if entry.has_states:
        data["before"] = _stored_entry_json(entry.provider, entry.before)
        data["after"] = _stored_entry_json(entry.provider, entry.after)
    return data


def revision_json(revision: Revision) -> dict[str, Any]:
    """One write, with the history lines it made."""
    return {
        "rev": revision.number,
        "revision": revision.revision,
        "base_revision": revision.base_revision,
        "changed_at": revision.time.isoformat(),
        "changed_by": revision.actor,
        "reason": revision.reason,
        "summary": revision.summary(),
        "entries": [history_entry_json(entry) for entry in revision.entries],
    }


def reader_json(reader: Reader) -> dict[str, Any]:
    """One reader process of the store, as ``fleet`` judges it."""
    report = reader.report.to_json() if reader.report is not None else None
    if report is not None:
        del report["format"], report["format_version"]
    return {
        "key": reader.key, "status": reader.status, "age_s": round(reader.age_s, 3),
        "behind_changes": reader.behind_changes,
        "behind_since": reader.behind_since.isoformat() if reader.behind_since else None,
        "message": reader.problem, "report": report,
    }


def wait_json(waited: Waited | None) -> dict[str, Any] | None:
    """How ``--wait`` went (None without ``--wait``)."""
    if waited is None:
        return None
    return {"reached": waited.reached, "seconds": round(waited.seconds, 3),
            "count": waited.count, "total": waited.total,
            "laggards": [reader_json(reader) for reader in waited.laggards]}


def catalog_entry_json(provider: str, models: Iterable[str], any_model: bool) -> dict[str, Any]:
    return {"provider": provider, "models": list(models), "any_model": any_model}


#: The ``kind`` of an error, by the exception that raised it (most specific first).
_ERROR_KINDS: tuple[tuple[type[ModelboardError], str], ...] = (
    (LockedError, "locked"),
    (ConflictError, "conflict"),
    (NotFoundError, "not_found"),
    (ValidationError, "invalid"),
    (ReadOnlyError, "read_only"),
    (BackendUnavailableError, "unavailable"),
    (ConfigurationError, "configuration"),
)


def error_kind(error: ModelboardError) -> str:
    for cls, kind in _ERROR_KINDS:
        if isinstance(error, cls):
            return kind
    return "refused"


def error_json(message: str, *, kind: str, exit_code: int) -> dict[str, Any]:
    """What a refused or mistyped command prints on stdout under ``--json``."""
    return {"error": {"kind": kind, "message": message, "exit_code": exit_code}}
