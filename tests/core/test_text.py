"""The one rule for terminal-safe text, and widths counted in cells."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelboard.core import LockedError
from modelboard.core.text import cell_width, escape, fit, strip_controls


def test_escape_shows_controls_and_keeps_one_line() -> None:
    assert escape("plain text") == "plain text"
    assert escape("eve\x1b[2J\nroot\x07") == "eve\\x1b[2J root\\x07"
    assert escape("gpt\u202e-4") == "gpt\\u202e-4"
    assert escape("tag\U000e0041") == "tag\\U000e0041"


def test_strip_controls_drops_or_replaces() -> None:
    assert strip_controls("a\x1b[31m\tb\r\nc") == "a[31m b  c"
    assert strip_controls("a\x1b[31m\nb", replacement=" ") == "a [31m b"


def test_fit_counts_cells_not_characters() -> None:
    assert cell_width("日本語") == 6 and cell_width("e\u0301") == 1
    assert fit("日本語テキスト", 7) == "日本語…"
    assert cell_width(fit("日本語テキスト", 7)) <= 7
    assert fit("short", 10) == "short" and fit("x", 0) == ""


@given(st.text(), st.integers(min_value=0, max_value=40))
def test_fitted_safe_text_is_printable_and_fits(text: str, width: int) -> None:
    for safe in (escape(text), strip_controls(text)):
        assert safe.isprintable()
        fitted = fit(safe, width)
        assert cell_width(fitted) <= width
        assert fitted == safe or fitted.endswith("…") or (width == 0 and fitted == "")


def test_errors_use_the_same_rule() -> None:
    error = LockedError("openai", locked_by="mallory\x1b]0;x\x07", reason="one\ntwo")
    assert str(error) == ("openai: selection is locked by mallory\\x1b]0;x\\x07: one two; "
                          "unlock it first")
