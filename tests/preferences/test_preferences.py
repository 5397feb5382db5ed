"""The preferences file: where it is, what it sets for the command and the editor, what
wins over it, and the theme picked in the editor written back to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelboard.core import ConfigurationError, open_store
from modelboard.core.preferences import load_preferences, preferences_path

CLI = [sys.executable, "-m", "modelboard"]


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60,
                          env=environment, cwd=cwd, check=False)


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    preferred = tmp_path / "preferred.json"
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[providers]\nacme = ["rocket-1", "rocket-2"]\n')
    config = tmp_path / "prefs.toml"
    config.write_text(f'# mine\nfile = "{preferred}"\ncatalog = "{catalog}"\nactor = "alice"\n'
                      'theme = "nord"\n\n[keys]\n"move.down" = "j,ctrl+n"\n')
    return {"preferred": preferred, "catalog": catalog, "config": config,
            "folder": tmp_path}


def test_the_file_sets_defaults_and_flags_and_environment_win(setup: dict[str, Path]) -> None:
    config, preferred, folder = setup["config"], setup["preferred"], setup["folder"]
    from_env = folder / "env.json"
    from_flag = folder / "flag.json"
    env = {"MODELBOARD_CONFIG": str(config)}

    by_file = run("set", "acme", "rocket-1", env=env, cwd=folder)
    by_env = run("set", "acme", "rocket-2", env={**env, "MODELBOARD_FILE": str(from_env)},
                 cwd=folder)
    by_flag = run("set", "acme", "rocket-2", "--file", str(from_flag), "--actor", "bob",
                  env={**env, "MODELBOARD_FILE": str(from_env)}, cwd=folder)
    catalog_by_env = run("set", "acme", "rocket-1", "--file", str(from_flag),
                         env={**env, "MODELBOARD_CATALOG": str(folder / "none.toml")},
                         cwd=folder)

    assert by_file.returncode == 0, by_file.stderr
    assert json.loads(preferred.read_text())["acme"]["model_name"] == "rocket-1"
    assert json.loads(preferred.read_text())["acme"]["updated_by"] == "alice"
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(from_env.read_text())["acme"]["model_name"] == "rocket-2"
    assert by_flag.returncode == 0, by_flag.stderr
    assert json.loads(from_flag.read_text())["acme"]["updated_by"] == "bob"
    assert catalog_by_env.returncode != 0 and "none.toml" in catalog_by_env.stderr
    assert not (folder / "config").exists()  # the built-in default was never used


def test_the_file_lives_in_the_user_config_folder(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELBOARD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))

    assert preferences_path() == tmp_path / "xdg" / "modelboard" / "config.toml"
    assert load_preferences().theme is None  # missing: nothing preferred

    monkeypatch.setenv("MODELBOARD_CONFIG", str(tmp_path / "other.toml"))
    assert preferences_path() == tmp_path / "other.toml"


@pytest.mark.parametrize(("text", "expected"), [
    ('theme = "nord"\nfiel = "x.json"\n', "prefs.toml:2:1: unknown setting 'fiel'"),
    ('theme = \n', "prefs.toml:1:"),
    ('actor = 3\n', "prefs.toml:1:1: actor must be a non-empty string"),
    ('[keys]\nedit = 5\n', "prefs.toml:2:1: keys.edit must be keys"),
])
def test_a_bad_file_is_refused_with_where_and_why(tmp_path: Path, text: str,
                                                  expected: str) -> None:
    config = tmp_path / "prefs.toml"
    config.write_text(text)

    with pytest.raises(ConfigurationError) as raised:
        load_preferences(config)
    refused = run("list", env={"MODELBOARD_CONFIG": str(config)}, cwd=tmp_path)

    assert expected in str(raised.value)
    assert refused.returncode == 1  # a bad file, as for the selections file
    assert refused.stderr.count("\n") == 1 and expected in refused.stderr
    assert "Traceback" not in refused.stderr


# -- the editor ---------------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual's loop


@pytest.mark.anyio
async def test_the_editor_takes_theme_and_keys_and_saves_a_picked_theme(
        setup: dict[str, Path]) -> None:
    from modelboard.tui import ModelboardApp

    config = setup["config"]
    store = open_store(setup["preferred"], catalog=setup["catalog"])
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"})
    app = ModelboardApp(store, watch=False, cursor_blink=False,
                        preferences=load_preferences(config))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.main.table
            assert app.theme == "nord"
            start = table.cursor_row
            await pilot.press("ctrl+n")             # from [keys]: move.down = "j,ctrl+n"
            assert table.cursor_row == start + 1
            await pilot.press("k")                  # k moves up, as in most terminal tools
            assert table.cursor_row == start
            await pilot.press("j")
            assert table.cursor_row == start + 1

            app.theme = "gruvbox"                   # what the palette's theme picker does
            await pilot.pause()
    finally:
        store.close()

    saved = config.read_text()
    assert 'theme = "gruvbox"' in saved
    assert saved.startswith("# mine\n") and '"move.down" = "j,ctrl+n"' in saved
    assert load_preferences(config).theme == "gruvbox"


@pytest.mark.anyio
async def test_a_read_only_editor_saves_nothing(setup: dict[str, Path]) -> None:
    from modelboard.tui import ModelboardApp

    config = setup["config"]
    before = config.read_bytes()
    store = open_store(setup["preferred"], catalog=setup["catalog"], read_only=True)
    app = ModelboardApp(store, watch=False, cursor_blink=False, read_only_reason="test",
                        preferences=load_preferences(config))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            app.theme = "gruvbox"
            await pilot.pause()
            assert app.theme == "gruvbox"
    finally:
        store.close()

    assert config.read_bytes() == before


@pytest.mark.anyio
async def test_the_theme_picked_in_the_palette_is_saved(setup: dict[str, Path],
                                                        tmp_path: Path) -> None:
    from modelboard.tui import ModelboardApp

    config = tmp_path / "fresh" / "config.toml"     # no file yet: it is created
    store = open_store(setup["preferred"], catalog=setup["catalog"])
    app = ModelboardApp(store, watch=False, cursor_blink=False,
                        preferences=load_preferences(config))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("ctrl+p")
            await pilot.press(*"theme")
            await pilot.pause(0.5)
            await pilot.press("enter")               # "Theme": the list of themes
            await pilot.pause(0.5)
            await pilot.press(*"dracula")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause(0.5)
            assert app.theme == "dracula"
    finally:
        store.close()

    assert load_preferences(config).theme == "dracula"
