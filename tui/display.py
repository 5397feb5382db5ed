"""How values from the selections file are shown: as plain text, never as markup.

Provider and model names are checked by the core, but ``updated_by`` and
``lock_reason`` are free text anyone with write access to the file may have typed,
so everything shown goes through :func:`safe_text`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.style import Style
from rich.text import Text

from modelboard.core.text import fit, strip_controls

__all__ = ["DASH", "clean", "relative_time", "safe_text", "short_actor"]

DASH = "—"


def clean(value: object, *, limit: int | None = None) -> str:
    """``value`` on one line without control characters, cut to ``limit`` cells with an ellipsis.

    The core's rule for terminal-safe text (:mod:`modelboard.core.text`): tabs and line
    breaks become spaces; escape sequences, bidi overrides and the like are dropped.
    """
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        # The core passes some history fields through as the file had them ("old": 5):
        # shown as what they are, never trusted to be text.
        value = json.dumps(value, ensure_ascii=False, default=str)
    value = strip_controls(value)
    return value if limit is None else fit(value, limit)


def safe_text(value: object, *, limit: int | None = None, style: Style | str = "",
              placeholder: str = DASH) -> Text:
    """A Rich ``Text`` of ``value`` cleaned (markup such as ``[red]`` stays literal)."""
    shown = clean(value, limit=limit)
    return Text(shown or placeholder, style=style, no_wrap=True, end="")


def relative_time(then: datetime | None, now: datetime) -> str:
    """``"3m ago"``-style age of ``then``, at most 8 cells; ``"in 2m"`` if clocks disagree."""
    if then is None:
        return DASH
    if not isinstance(then, datetime):
        return DASH
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = int((now - then).total_seconds())  # exact for any two aware datetimes
    if abs(seconds) < 10:
        return "just now"
    span = _span(abs(seconds))
    return f"{span} ago" if seconds > 0 else f"in {span}"


def _span(seconds: int) -> str:
    for size, unit in ((365 * 86400, "y"), (30 * 86400, "mo"), (86400, "d"), (3600, "h"),
                       (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def short_actor(actor: object) -> str | None:
    """``alice@host`` as ``alice`` where space is short (the detail line shows the host)."""
    if actor is None:
        return None
    actor = actor if isinstance(actor, str) else clean(actor)
    return actor.split("@", 1)[0] or actor
