"""The editor's side of the preferences file (``modelboard.core.preferences``).

On start the theme and the key bindings (Textual's keymap, by binding id) are applied;
a theme picked in the command palette is written back to the file, keeping the rest
of it, comments included. Nothing is written in read-only mode.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from textual.app import App
from textual.theme import Theme

from modelboard.core.preferences import Preferences

__all__ = ["apply_preferences", "save_theme"]


def apply_preferences(app: App[Any], preferences: Preferences, *, save: bool) -> None:
    """Theme and keymap from ``preferences``; with ``save``, remember the themes picked."""
    if preferences.theme is not None:
        if preferences.theme in app.available_themes:
            app.theme = preferences.theme
        else:
            app.notify(f"{preferences.path}: unknown theme {preferences.theme!r}; "
                       f"using {app.theme}", severity="warning", markup=False)
    if preferences.keys:
        app.set_keymap(dict(preferences.keys))
    if save:
        def remember(theme: Theme) -> None:
            try:
                save_theme(preferences.path, theme.name)
            except (OSError, ValueError) as error:  # ValueError: edited into bad TOML since
                reason = error.strerror if isinstance(error, OSError) else str(error)
                app.notify(f"could not save the theme in {preferences.path}: {reason}",
                           severity="warning", markup=False)

        app.theme_changed_signal.subscribe(app, remember)


def save_theme(path: Path, theme: str) -> None:
    """Set ``theme`` in the preferences file at ``path``, creating it if needed."""
    import stat

    import tomlkit

    try:
        if not stat.S_ISREG(path.stat().st_mode):  # never replace a device or a folder
            raise OSError(0, "not a regular file", str(path))
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        document = tomlkit.document()
    if document.get("theme") == theme:
        return
    document["theme"] = theme
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A whole new file or the old one, never half of one.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(tomlkit.dumps(document))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
