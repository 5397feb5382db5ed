"""``modelboard completion``: scripts that real bash, zsh and fish load and complete with."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import Modelboard

CLI = [sys.executable, "-m", "modelboard"]


def script(shell: str, folder: Path) -> Path:
    done = subprocess.run([*CLI, "completion", shell], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    path = folder / f"modelboard.{shell}"
    path.write_text(done.stdout)
    return path


def need(shell: str, request: pytest.FixtureRequest) -> str:
    found = shutil.which(shell)
    if found is None:
        shared = request.config.pluginmanager.get_plugin(str(Path(__file__).parents[1]
                                                             / "conftest.py"))
        if shared.running_in_ci():
            pytest.fail(f"{shell} is missing (.ci/run installs it)")
        pytest.skip(f"{shell} is not installed")
    return found


def bash_completes(path: Path, *words: str) -> list[str]:
    words_list = " ".join(f"'{word}'" for word in words)
    program = (f"source {path}; COMP_WORDS=({words_list}); COMP_CWORD={len(words) - 1}; "
               f"COMP_LINE='{' '.join(words)}'; COMP_POINT=${{#COMP_LINE}}; "
               "_shtab_modelboard; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_options_and_choices(tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    need("bash", request)
    path = script("bash", tmp_path)

    assert bash_completes(path, "modelboard", "se") == ["set", "serve"]
    assert bash_completes(path, "modelboard", "set", "--ex") == ["--expect"]
    assert bash_completes(path, "modelboard", "completion", "") == ["bash", "zsh", "fish"]
    assert "--json" in bash_completes(path, "modelboard", "history", "--")


def test_fish_completes_commands_and_options(tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    fish = need("fish", request)
    path = script("fish", tmp_path)

    def completes(line: str) -> list[str]:
        done = subprocess.run([fish, "--no-config", "-c", f"source {path}; complete -C '{line}'"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return [entry.split("\t")[0] for entry in done.stdout.splitlines()]

    assert completes("modelboard se") == ["serve", "set"]
    assert completes("modelboard set --ex") == ["--expect"]
    assert "--json" in completes("modelboard history --")
    assert "--file" in completes("modelboard --f")


def test_zsh_loads_the_script(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    zsh = need("zsh", request)
    path = script("zsh", tmp_path)
    functions = tmp_path / "functions"
    functions.mkdir()
    path.rename(functions / "_modelboard")

    loaded = subprocess.run(
        [zsh, "-f", "-c", f"fpath=({functions} $fpath); autoload -Uz compinit; "
                          "compinit -u -D; print -r -- ${_comps[modelboard]}"],
        capture_output=True, text=True, timeout=60, check=False)

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "_modelboard"
    assert (functions / "_modelboard").read_text().startswith("#compdef modelboard")


def test_completion_costs_the_other_commands_nothing(modelboard: Modelboard) -> None:
    """shtab is imported by ``completion`` only: start-up of every other command is as it was."""
    outcome = modelboard("--version", prefix=[*CLI[:1], "-X", "importtime", "-m", "modelboard"])
    completion = modelboard("completion", "bash", prefix=[*CLI[:1], "-X", "importtime", "-m",
                                                          "modelboard"])

    def imported(err: str) -> set[str]:
        return {match.group(1).split(".")[0]
                for match in re.finditer(r"^import time:.*\|\s+(\S+)$", err, re.M)}

    assert outcome.code == 0 and "modelboard" in imported(outcome.err)
    assert "shtab" not in imported(outcome.err)
    assert "shtab" in imported(completion.err)
