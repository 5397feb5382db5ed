"""Opening a store: where the selections live, and the ready-made objects of the in-proxy API."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .backend import Backend
from .catalog import Catalog
from .errors import ConfigurationError
from .filebackend import FileBackend
from .service import ModelConfigService
from .store import SelectionStore

__all__ = [
    "CATALOG_ENV_VAR",
    "DEFAULT_PATH",
    "ENV_VAR",
    "open_store",
    "resolve_catalog",
    "resolve_location",
    "write_problem",
]

DEFAULT_PATH = "config/model_selections.json"
ENV_VAR = "MODELBOARD_FILE"
CATALOG_ENV_VAR = "MODELBOARD_CATALOG"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def resolve_location(location: str | os.PathLike[str] | None = None) -> str:
    """The explicit location, else ``$MODELBOARD_FILE``, else the default file."""
    if location is not None and os.fspath(location):
        return os.fspath(location)
    return os.environ.get(ENV_VAR) or DEFAULT_PATH


def resolve_catalog(catalog: Catalog | str | Path | None = None) -> Catalog:
    """The given catalog (or catalog file), else ``$MODELBOARD_CATALOG``, else the bundled one.

    The variable spares every proxy, editor and command its own ``--catalog``.
    """
    if isinstance(catalog, Catalog):
        return catalog
    path = catalog or os.environ.get(CATALOG_ENV_VAR)
    return Catalog.from_file(path) if path else Catalog.default()


def _backend_for(location: str, *, read_only: bool) -> Backend:
    if location.startswith(_REDIS_SCHEMES):
        try:
            from .redisbackend import RedisBackend  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigurationError(
                f"the Redis backend needs redis-py: pip install 'modelboard[redis]' ({exc})"
            ) from None
        backend: Backend = RedisBackend(location, read_only=read_only)
        return backend
    return FileBackend(location, read_only=read_only)


def open_store(location: str | os.PathLike[str] | None = None, *,
               catalog: Catalog | str | Path | None = None, actor: str | None = None,
               read_only: bool = False, watch: bool = False, report: bool = True,
               reader_name: str | None = None) -> SelectionStore:
    """Open the selections at ``location`` (a file path or a ``redis://`` URL).

    ``catalog`` is a Catalog, or the path of a catalog file (JSON or TOML); else
    ``$MODELBOARD_CATALOG``, else the bundled catalog. ``read_only`` writes nothing at
    all, not even a lock file. ``watch`` starts the background reload thread (see
    ``start_watching``). A watching store reports itself to the fleet (see
    ``store.readers()``) under ``reader_name`` (default: the program's name) unless
    ``report`` is false or ``$MODELBOARD_REPORT`` is 0.
    """
    store = SelectionStore(_backend_for(resolve_location(location), read_only=read_only),
                           catalog=resolve_catalog(catalog), actor=actor, report=report,
                           reader_name=reader_name)
    if watch:
        store.start_watching()
    return store


def write_problem(location: str | os.PathLike[str] | None = None) -> str | None:
    """Why the running user could not write the selections at ``location``; None if they could.

    The backend's own answer (see ``Backend.write_problem``), asked without opening a
    store or writing anything: the editor opens read-only, and says why, when it is not None.
    """
    backend = _backend_for(resolve_location(location), read_only=True)
    try:
        return backend.write_problem()
    finally:
        backend.close()


class _DefaultStore:
    """The store on the default file, opened on first use (`model_config_manager`)."""

    def __init__(self) -> None:
        self._store: SelectionStore | None = None
        self._lock = threading.Lock()

    def _open(self) -> SelectionStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store()
        return self._store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._open(), name)

    def __repr__(self) -> str:
        if self._store is None:
            return "<store on the default file, not opened yet>"
        return repr(self._store)


model_config_manager: Any = _DefaultStore()
model_config_service = ModelConfigService(lambda: model_config_manager._open())
