"""modelboard's headless core: which model each LLM provider uses.

A proxy imports this on its request path::

    from modelboard.core import open_store
    store = open_store(watch=True)                # config/model_selections.json
    model = store.model_for("openai", "gpt-4o-mini")  # a dict lookup; the default if unset

Nothing here imports textual or rich.
"""

from __future__ import annotations

import logging

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


def __getattr__(name: str) -> str:
    """``__version__``, looked up on first use: importlib.metadata (with the email and
    zipfile modules it imports) was a sixth of ``modelboard get``'s start."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("modelboard")  # pyproject.toml is the one place it is written
    except PackageNotFoundError:  # imported from a checkout that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found

# A library logs, the application decides where to: without logging configured, nothing
# reaches stderr (Python's last-resort handler would print bare lines).
logging.getLogger("modelboard").addHandler(logging.NullHandler())

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
