"""The model picker's ranking against the bundled catalog, and what enter saves."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import stored, wait_for

from modelboard.core import Catalog
from modelboard.tui.dialogs import ModelPicker, highlighted, match_model, rank_models

CATALOG = Catalog.default()

#: (provider, typed, the best match). The bundled catalog lists each family newest first.
BEST_MATCH = [
    ("openai", "g4o", "gpt-4o"),            # letters in order: the closest, shortest match
    ("openai", "gpt4o", "gpt-4o"),
    ("openai", "gpt4", "gpt-4"),            # not gpt-4.1, listed earlier with letters left
    ("openai", "GPT-4O", "gpt-4o"),         # case does not matter
    ("openai", "o3", "o3"),                 # exact beats the prefix of o3-mini
    ("openai", "o3-", "o3-mini"),           # prefix, catalog order
    ("openai", "4.1", "gpt-4.1"),           # word prefix
    ("openai", "mini", "gpt-5-mini"),       # word prefix, catalog order (newest first)
    ("openai", "turbo", "gpt-4-turbo"),
    ("openai", "oss", "gpt-oss-120b"),
    ("openai", "g5n", "gpt-5-nano"),
    ("openai", "4om", "gpt-4o-mini"),
    ("anthropic", "sonnet", "claude-sonnet-4-5"),  # the newest sonnet, listed first
    ("anthropic", "opus", "claude-opus-4-5"),
    ("anthropic", "haiku", "claude-haiku-4-5"),
    ("anthropic", "c35s", "claude-3-5-sonnet"),
    ("anthropic", "sonnet-4", "claude-sonnet-4-5"),
    ("anthropic", "claude-3", "claude-3-7-sonnet"),
    ("google", "flash", "gemini-2.5-flash"),
    ("google", "g25p", "gemini-2.5-pro"),
    ("google", "lite", "gemini-2.5-flash-lite"),
    ("mistral", "large", "mistral-large-latest"),
    ("mistral", "codestral", "codestral-latest"),
    ("xai", "grok-4", "grok-4"),
    ("xai", "g3m", "grok-3-mini"),
    ("groq", "kimi", "moonshotai/kimi-k2-instruct"),
    ("bedrock", "nova", "amazon.nova-pro-v1:0"),
    ("deepseek", "reason", "deepseek-reasoner"),
]


@pytest.mark.parametrize(("provider", "typed", "best"), BEST_MATCH)
def test_best_match_against_the_bundled_catalog(provider: str, typed: str, best: str) -> None:
    spec = CATALOG.get(provider)
    assert spec is not None
    ranked = rank_models(spec.models, typed)
    assert ranked, f"nothing matches {typed!r}"
    assert ranked[0].model == best, [match.model for match in ranked[:4]]


def test_ranking_tiers_in_order() -> None:
    models = ["gpt-4o-mini", "o3-mini", "gpt-4o", "chatgpt-4o-latest", "o3", "gpt-4.1"]
    assert [m.model for m in rank_models(models, "gpt-4o")] == [
        "gpt-4o", "gpt-4o-mini", "chatgpt-4o-latest"]  # exact, prefix, then letters
    assert [m.model for m in rank_models(models, "g41")] == ["gpt-4.1"]
    assert [m.model for m in rank_models(models, "")] == models  # catalog order
    assert rank_models(models, "zz") == []


def test_highlight_marks_the_letters_matched() -> None:
    match = match_model("gpt-4o", "g4o")
    assert match is not None and match.letters == (0, 4, 5)
    text = highlighted(match)
    assert text.plain == "gpt-4o"
    marked = {n for span in text.spans for n in range(span.start, span.end)}
    assert marked == {0, 4, 5}
    # a name that is not plain text is shown cleaned, with nothing marked at wrong places
    odd = match_model("a\x1bb", "ab")
    assert odd is not None and highlighted(odd).plain == "ab" and not highlighted(odd).spans



@pytest.mark.anyio
@pytest.mark.parametrize(("typed", "best"), [("g4o", "gpt-4o"), ("gpt4o", "gpt-4o"),
                                             ("gpt4", "gpt-4")])
async def test_enter_saves_the_highlighted_best_match(
        seeded_file: Path, open_app, typed: str, best: str) -> None:
    app = open_app(seeded_file)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main.table
        table.move_cursor(row=table.get_row_index("openai"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*typed)
        options = app.screen.query_one("#model-options")
        await wait_for(pilot, lambda: options.highlighted_option is not None
                       and options.highlighted_option.id == f"model:{best}",
                       what=f"{best} highlighted")
        await pilot.press("enter")
        await wait_for(pilot, lambda: stored(seeded_file)["openai"]["model_name"] == best,
                       what=f"{best} saved")
