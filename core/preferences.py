"""The user's preferences file: theme, default file and catalog, actor name, key bindings.

A TOML file, ``$MODELBOARD_CONFIG`` else ``config.toml`` in the user's configuration
folder (platformdirs: ``~/.config/modelboard/config.toml`` on Linux)::

    theme = "nord"                         # any Textual theme
    file = "/etc/llm/models.json"          # used when neither --file nor $MODELBOARD_FILE
    catalog = "/etc/llm/catalog.toml"      # used when neither --catalog nor $MODELBOARD_CATALOG
    actor = "alice"                        # used when no --actor (instead of user@host)

    [keys]                                 # Textual keymap: binding id = keys
    edit = "e,enter"
    "move.down" = "j,ctrl+n"

Flags and environment variables win over the file; the file wins over the built-in
defaults. A file that is not valid is refused with its line and reason, never half
used: a mistyped ``file`` must not send a write to another file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = ["CONFIG_ENV_VAR", "Preferences", "load_preferences", "preferences_path"]

CONFIG_ENV_VAR = "MODELBOARD_CONFIG"
_TEXT_KEYS = ("theme", "file", "catalog", "actor")


@dataclass(frozen=True)
class Preferences:
    """What the preferences file says; None (or no key) where it says nothing."""

    path: Path
    theme: str | None = None
    file: str | None = None
    catalog: str | None = None
    actor: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)


def preferences_path() -> Path:
    """``$MODELBOARD_CONFIG``, else ``config.toml`` in the user's configuration folder."""
    explicit = os.environ.get(CONFIG_ENV_VAR)
    if explicit:
        return Path(explicit)
    import platformdirs  # only when a command needs the file

    return Path(platformdirs.user_config_dir("modelboard", appauthor=False)) / "config.toml"


def load_preferences(path: Path | None = None) -> Preferences:
    """The preferences at ``path`` (default: :func:`preferences_path`); none if it is missing.

    Raises :class:`ConfigurationError` (with the line) for a file that does not parse,
    an unknown key or a value of the wrong type.
    """
    path = path if path is not None else preferences_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Preferences(path=path)
    except OSError as exc:
        raise ConfigurationError(f"cannot read preferences: {exc.strerror}",
                                 path=str(path)) from None
    import tomllib

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        line, column = _position(str(exc))
        reason = str(exc).split(" (at ")[0]
        raise ConfigurationError(f"not valid TOML: {reason}", path=str(path), line=line,
                                 column=column) from None
    return _parse(data, path, raw.decode("utf-8"))


def _parse(data: dict[str, Any], path: Path, text: str) -> Preferences:
    values: dict[str, str] = {}
    keys: dict[str, str] = {}
    for name, value in data.items():
        if name in _TEXT_KEYS:
            if not isinstance(value, str) or not value.strip():
                raise _wrong(path, text, name, f"{name} must be a non-empty string")
            values[name] = value
        elif name == "keys":
            if not isinstance(value, dict):
                raise _wrong(path, text, name, "keys must be a table: binding id = \"keys\"")
            for binding, keys_text in value.items():
                if not isinstance(keys_text, str) or not keys_text.strip():
                    raise _wrong(path, text, binding,
                                 f"keys.{binding} must be keys such as \"j,down\"")
                keys[binding] = keys_text
        else:
            known = ", ".join((*_TEXT_KEYS, "keys"))
            raise _wrong(path, text, name, f"unknown setting {name!r} (known: {known})")
    return Preferences(path=path, keys=keys, **values)


def _wrong(path: Path, text: str, name: str, reason: str) -> ConfigurationError:
    line = next((number for number, content in enumerate(text.splitlines(), 1)
                 if content.lstrip().lstrip('"').startswith(name)), None)
    return ConfigurationError(reason, path=str(path), line=line)


def _position(message: str) -> tuple[int | None, int | None]:
    # tomllib says where only in its message: "... (at line 3, column 7)"
    import re

    found = re.search(r"line (\d+), column (\d+)", message)
    return (int(found.group(1)), int(found.group(2))) if found else (None, None)
