"""Every built-in theme, dark and light, draws every kind of row readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.color import Color
from tui_helpers import wait_for

#: Muted rows (no model) are meant to be quieter than the others; below this they stop
#: being readable (the light themes drew them at 1.1:1, white on light grey).
MINIMUM = 2.5

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def _luminance(color: Color) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    red, green, blue = color.get_truecolor()
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast(foreground: Color, background: Color) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


async def test_every_theme_draws_every_row_readable(seeded_file: Path, open_app,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main.table
        await wait_for(pilot, lambda: table.row_count > 0, what="the table")
        # a row with no model, a locked one, an ordinary one; the cursor elsewhere
        rows = {p: table.get_row_index(p) + 1 for p in ("cohere", "anthropic", "openai")}
        table.move_cursor(row=table.get_row_index("xai"))
        poor: list[str] = []
        for theme in sorted(app.available_themes):
            if "ansi" in theme:
                continue  # the terminal's own palette: its colours are not known here
            app.theme = theme
            await pilot.pause()
            table.render_lines(table.region.reset_offset)  # drawn in this theme's colours
            for provider, y in rows.items():
                for segment in table.render_line(y):
                    style = segment.style
                    if not segment.text.strip() or style is None:
                        continue
                    if style.color is None or style.bgcolor is None:
                        continue
                    ratio = contrast(style.color, style.bgcolor)
                    if ratio < MINIMUM:
                        poor.append(f"{theme}: {provider} {segment.text.strip()!r} {ratio:.1f}")
        assert not poor, poor
