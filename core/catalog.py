"""Which providers exist and which models each serves: the rules every write obeys."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from .catalog_data import BUNDLED_PROVIDERS
from .errors import ConfigurationError, ValidationError
from .models import Selection, check_name
from .safefiles import read_regular_file

__all__ = ["MAX_CATALOG_BYTES", "Catalog", "ProviderSpec"]

_T = TypeVar("_T")
#: A catalog file bigger than this is refused (the bundled one is a few kilobytes).
MAX_CATALOG_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider and the models it serves; ``any_model`` accepts every model name."""

    name: str
    models: tuple[str, ...] = ()
    any_model: bool = False

    def accepts(self, model: str) -> bool:
        return self.any_model or model in self.models


@functools.cache
def _catalog_file_models() -> tuple[Any, Any]:
    """The pydantic models of a catalog file, built on first use.

    Building them costs more than importing the rest of the core, and only
    ``Catalog.from_file`` needs them: a proxy or a CLI command without a catalog
    file never pays for it.
    """
    import pydantic

    class ProviderFile(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        models: list[str] = []
        any_model: bool = False

    class CatalogFile(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        mode: Literal["extend", "replace"] = "extend"
        providers: dict[str, ProviderFile | list[str]]

    return ProviderFile, CatalogFile


class Catalog(Mapping[str, ProviderSpec]):
    """An immutable set of providers; validation errors name the closest valid names."""

    def __init__(self, providers: Iterable[ProviderSpec]) -> None:
        self._providers = {spec.name: spec for spec in providers}

    # -- building ---------------------------------------------------------------------
    @classmethod
    def default(cls) -> Catalog:
        """The bundled catalog of common providers."""
        return cls.from_mapping(BUNDLED_PROVIDERS)

    @classmethod
    def from_mapping(cls, providers: Mapping[str, Iterable[str] | None]) -> Catalog:
        """Build from ``{provider: [models]}``; ``None`` (or ``["*"]``) accepts any model."""
        specs = []
        for name, models in providers.items():
            check_name("provider", name)
            listed = tuple(models) if models is not None else ()
            any_model = models is None or "*" in listed
            specs.append(ProviderSpec(
                name, tuple(check_name("model", m) for m in listed if m != "*"), any_model))
        return cls(specs)

    @classmethod
    def from_file(cls, path: str | Path, *, base: Catalog | None = None) -> Catalog:
        """Load a JSON or TOML catalog file.

        The file holds ``providers`` (name -> list of models, or a table with ``models``
        and ``any_model``) and ``mode``: ``extend`` (default) adds to ``base`` (the
        bundled catalog unless given), ``replace`` uses only the file's providers.
        """
        path = Path(path)
        try:
            raw = read_regular_file(path, MAX_CATALOG_BYTES)
        except IsADirectoryError:
            raise ConfigurationError("is a folder, not a catalog file", path=str(path)) from None
        except OSError as exc:
            raise ConfigurationError(f"cannot read catalog: {exc.strerror}",
                                     path=str(path)) from None
        try:
            if path.suffix.lower() == ".toml":
                import tomllib  # only TOML catalogs need it

                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw)
        except RecursionError:
            raise ConfigurationError("not a valid catalog: nested too deeply",
                                     path=str(path)) from None
        except (ValueError, UnicodeDecodeError) as exc:
            reason, line, column = _locate_parse_error(exc, raw)
            raise ConfigurationError(f"not a valid catalog: {reason}", path=str(path),
                                     line=line, column=column) from None
        import pydantic

        provider_file, catalog_file = _catalog_file_models()
        try:
            parsed = catalog_file.model_validate(data)
            specs = []
            for name, entry in parsed.providers.items():
                if isinstance(entry, list):
                    entry = provider_file(models=entry)
                check_name("provider", name)
                models = tuple(check_name("model", m) for m in entry.models if m != "*")
                specs.append(ProviderSpec(name, models, entry.any_model or "*" in entry.models))
        except pydantic.ValidationError as exc:
            # Every problem on one line: a typo'd key shows up as "missing" plus "extra",
            # and only the pair says what happened.
            reason = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()[:4])
            raise ConfigurationError(reason, path=str(path)) from None
        except ValidationError as exc:
            raise ConfigurationError(str(exc), path=str(path)) from None
        except RecursionError:
            raise ConfigurationError("not a valid catalog: nested too deeply",
                                     path=str(path)) from None
        if parsed.mode == "replace":
            return cls(specs)
        return (base if base is not None else cls.default()).extended(specs)

    def extended(self, specs: Iterable[ProviderSpec]) -> Catalog:
        """A new catalog with ``specs`` added; a provider given again gains its models."""
        merged = dict(self._providers)
        for spec in specs:
            old = merged.get(spec.name)
            if old is not None:
                models = old.models + tuple(m for m in spec.models if m not in old.models)
                spec = ProviderSpec(spec.name, models, old.any_model or spec.any_model)
            merged[spec.name] = spec
        return Catalog(merged.values())

    # -- Mapping ------------------------------------------------------------------------
    def __getitem__(self, provider: str) -> ProviderSpec:
        return self._providers[provider]

    @overload
    def get(self, provider: str, /) -> ProviderSpec | None: ...
    @overload
    def get(self, provider: str, /, default: ProviderSpec | _T) -> ProviderSpec | _T: ...

    def get(self, provider: str, default: object = None) -> object:
        # The dict's own get: Mapping.get goes through __getitem__ and a KeyError.
        return self._providers.get(provider, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def __repr__(self) -> str:
        names = sorted(self._providers)
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        return f"<Catalog of {len(names)} providers: {shown}>"

    # -- rules --------------------------------------------------------------------------
    def models(self, provider: str) -> tuple[str, ...]:
        """The models listed for ``provider`` (empty for an unknown one)."""
        spec = self._providers.get(provider)
        return spec.models if spec else ()

    def close_providers(self, provider: str) -> list[str]:
        import difflib  # only an error message needs it

        return difflib.get_close_matches(provider, list(self._providers), n=3, cutoff=0.5)

    def close_models(self, provider: str, model: str) -> list[str]:
        import difflib

        return difflib.get_close_matches(model, list(self.models(provider)), n=3, cutoff=0.5)

    def validate(self, provider: str, model: str | None = None) -> None:
        """Raise ValidationError unless ``provider`` (and ``model``, if given) are known."""
        check_name("provider", provider)
        spec = self._providers.get(provider)
        if spec is None:
            close = self.close_providers(provider)
            hint = f"; did you mean {_either(close)}?" if close else \
                f"; known providers: {', '.join(sorted(self._providers)) or 'none'}"
            raise ValidationError(f"unknown provider {provider!r}{hint}", provider=provider,
                                  suggestions=tuple(close))
        if model is None:
            return
        check_name("model", model)
        if not spec.accepts(model):
            close = self.close_models(provider, model)
            hint = f"; did you mean {_either(close)}?" if close else \
                f"; it serves {', '.join(spec.models[:6])}{' …' if len(spec.models) > 6 else ''}"
            raise ValidationError(f"{provider}: model {model!r} is not served by {provider}{hint}",
                                  provider=provider, suggestions=tuple(close))

    def problems(self, selections: Mapping[str, Selection]) -> list[str]:
        """One line per selection the catalog does not accept (loading only warns)."""
        found = []
        for provider, selection in selections.items():
            try:
                self.validate(provider, selection.model_name)
            except ValidationError as exc:
                found.append(str(exc))
        return found


# Compiled (and cached by re) when a catalog file is bad, not by every process that loads this.
_TOML_WHERE = r" \((?:at line (\d+), column (\d+)|at end of document)\)$"


def _locate_parse_error(exc: Exception, raw: bytes) -> tuple[str, int | None, int | None]:
    """Reason, line and column of a JSON or TOML parse error (tomllib only says it in text)."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg, exc.lineno, exc.colno
    message = str(exc)
    where = re.search(_TOML_WHERE, message)
    if where is None:
        return message, None, None
    if where.group(1) is not None:
        return message[: where.start()], int(where.group(1)), int(where.group(2))
    lines = raw.decode("utf-8", errors="replace").split("\n")
    return message[: where.start()], len(lines), len(lines[-1]) + 1


def _either(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
