"""modelboard's headless core: which model each LLM provider uses.

A proxy imports this on its request path::

    from modelboard.core import open_store
    store = open_store(watch=True)                # config/model_selections.json
    model = store.model_for("openai", "gpt-4o-mini")  # a dict lookup; the default if unset

Nothing here imports textual or rich.
"""

from __future__ import annotations

# Every public name is imported on first use (``__getattr__`` below), so that
# ``import modelboard.core.cli`` or ``from modelboard.core import errors`` does not pull in
# the whole core: ``modelboard get`` starts in a fraction of the time. The block below
# gives type checkers and IDEs the same names, eagerly.
TYPE_CHECKING = False
if TYPE_CHECKING:
    __version__: str

    from .catalog import Catalog, ProviderSpec
    from .errors import (
        ConfigurationError,
        ConflictError,
        LockedError,
        ModelboardError,
        NotFoundError,
        ReadOnlyError,
        ValidationError,
    )
    from .history import Revision, Verification
    from .models import ChangeEvent, HistoryEntry, ProviderChange, Selection, Snapshot
    from .opening import (
        CATALOG_ENV_VAR,
        DEFAULT_PATH,
        ENV_VAR,
        model_config_manager,
        model_config_service,
        open_store,
        resolve_catalog,
        resolve_location,
        write_problem,
    )
    from .rules import UNSET, Operation, Outcome, Refusal
    from .service import ModelConfigService
    from .serving import EntryProblem
    from .store import SelectionStore, Transaction
    from .versions import Rollback, RollbackPlan, diff_documents

#: public name -> the module of the core that defines it.
_HOMES = {
    **dict.fromkeys(("Catalog", "ProviderSpec"), "catalog"),
    **dict.fromkeys(("ConfigurationError", "ConflictError", "LockedError", "ModelboardError",
                     "NotFoundError", "ReadOnlyError", "ValidationError"), "errors"),
    **dict.fromkeys(("Revision", "Verification"), "history"),
    **dict.fromkeys(("ChangeEvent", "HistoryEntry", "ProviderChange", "Selection",
                     "Snapshot"), "models"),
    **dict.fromkeys(("CATALOG_ENV_VAR", "DEFAULT_PATH", "ENV_VAR", "model_config_manager",
                     "model_config_service", "open_store", "resolve_catalog",
                     "resolve_location", "write_problem"), "opening"),
    **dict.fromkeys(("UNSET", "Operation", "Outcome", "Refusal"), "rules"),
    "ModelConfigService": "service",
    "EntryProblem": "serving",
    **dict.fromkeys(("SelectionStore", "Transaction"), "store"),
    **dict.fromkeys(("Rollback", "RollbackPlan", "diff_documents"), "versions"),
}


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use; ``__version__`` looked up
    then too (importlib.metadata, with the email and zipfile modules it imports, was a
    sixth of ``modelboard get``'s start)."""
    if name == "__version__":
        return _version()
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("modelboard")  # pyproject.toml is the one place it is written
    except PackageNotFoundError:  # imported from a checkout that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found


__all__ = [
    "CATALOG_ENV_VAR",
    "DEFAULT_PATH",
    "ENV_VAR",
    "UNSET",
    "Catalog",
    "ChangeEvent",
    "ConfigurationError",
    "ConflictError",
    "EntryProblem",
    "HistoryEntry",
    "LockedError",
    "ModelConfigService",
    "ModelboardError",
    "NotFoundError",
    "Operation",
    "Outcome",
    "ProviderChange",
    "ProviderSpec",
    "ReadOnlyError",
    "Refusal",
    "Revision",
    "Rollback",
    "RollbackPlan",
    "Selection",
    "SelectionStore",
    "Snapshot",
    "Transaction",
    "ValidationError",
    "Verification",
    "__version__",
    "diff_documents",
    "model_config_manager",
    "model_config_service",
    "open_store",
    "resolve_catalog",
    "resolve_location",
    "write_problem",
]
