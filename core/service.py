"""The in-proxy API's service layer: store operations returning result dicts, never raising.

For callers (an HTTP handler, say) that want ``{"success": False, "error": "..."}``
rather than exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import ModelboardError, ValidationError
from .models import Selection
from .store import SelectionStore

__all__ = ["ModelConfigService", "selection_to_dict"]


def selection_to_dict(provider: str, selection: Selection) -> dict[str, Any]:
    """A JSON-ready view of one selection, in the file's field names (the service's contract;
    the command line's ``--json`` says ``changed_at``/``changed_by``, see ``cli/shapes.py``)."""
    return {
        "provider": provider,
        "model_name": selection.model_name,
        "editable": selection.editable,
        "locked": not selection.editable,
        "last_updated": selection.last_updated.isoformat() if selection.last_updated else None,
        "updated_by": selection.updated_by,
        "lock_reason": selection.lock_reason,
    }


def _failure(error: ModelboardError) -> dict[str, Any]:
    result: dict[str, Any] = {"success": False, "error": str(error),
                              "error_type": type(error).__name__}
    if isinstance(error, ValidationError) and error.suggestions:
        result["suggestions"] = list(error.suggestions)
    return result


class ModelConfigService:
    """Validated operations on a store, each returning ``{"success": bool, ...}``."""

    def __init__(self, store: SelectionStore | Callable[[], SelectionStore]) -> None:
        self._store_or_factory = store

    @property
    def store(self) -> SelectionStore:
        if not isinstance(self._store_or_factory, SelectionStore):
            self._store_or_factory = self._store_or_factory()
        return self._store_or_factory

    def set_model_selection(self, provider: str, model_name: str, *,
                            actor: str | None = None) -> dict[str, Any]:
        try:
            selection = self.store.set_model_selection(provider, model_name, actor=actor)
        except ModelboardError as error:
            return _failure(error)
        return {"success": True, **selection_to_dict(provider, selection)}

    def bulk_set_model_selections(self, selections: Mapping[str, str], *,
                                  actor: str | None = None) -> dict[str, Any]:
        """All or nothing; ``results`` has one entry per provider when it succeeds."""
        try:
            stored = self.store.bulk_set_model_selections(selections, actor=actor)
        except ModelboardError as error:
            return {**_failure(error), "results": {}}
        return {"success": True, "results": {
            provider: {"success": True, **selection_to_dict(provider, selection)}
            for provider, selection in stored.items()}}

    def get_model_selection(self, provider: str) -> dict[str, Any] | None:
        selection = self.store.get_model_selection(provider)
        return None if selection is None else selection_to_dict(provider, selection)

    def get_all_selections(self) -> dict[str, dict[str, Any]]:
        return {provider: selection_to_dict(provider, selection)
                for provider, selection in self.store.get_all_selections().items()}

    def validate_model_selection(self, provider: str, model_name: str) -> dict[str, Any]:
        try:
            self.store.catalog.validate(provider, model_name)
        except ValidationError as error:
            return {"valid": False, "error": str(error), "suggestions": list(error.suggestions)}
        return {"valid": True}

    def lock(self, provider: str, *, reason: str | None = None,
             actor: str | None = None) -> dict[str, Any]:
        try:
            selection = self.store.lock(provider, reason=reason, actor=actor)
        except ModelboardError as error:
            return _failure(error)
        return {"success": True, **selection_to_dict(provider, selection)}

    def unlock(self, provider: str, *, actor: str | None = None) -> dict[str, Any]:
        try:
            selection = self.store.unlock(provider, actor=actor)
        except ModelboardError as error:
            return _failure(error)
        return {"success": True, **selection_to_dict(provider, selection)}

    def remove_model_selection(self, provider: str, *,
                               actor: str | None = None) -> dict[str, Any]:
        try:
            self.store.remove_model_selection(provider, actor=actor)
        except ModelboardError as error:
            return _failure(error)
        return {"success": True, "provider": provider}

    def reload(self) -> dict[str, Any]:
        try:
            snapshot = self.store.reload()
        except ModelboardError as error:
            return _failure(error)
        return {"success": True, "revision": snapshot.revision, "providers": len(snapshot)}
