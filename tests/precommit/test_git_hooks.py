"""The pre-commit hook this repository provides, and the README's plain git hook, each
run by real git in a scratch repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
GOOD = {"openai": {"model_name": "gpt-4o", "editable": True}}
BAD = '{\n  "openai": {"model_name": "gpt-4oo", "editable": true}\n}\n'


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    if check:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "deploy"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def readme_hook() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("As a plain git hook")
    return re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_git_hook_names_the_real_file(scratch: Path) -> None:
    hook = scratch / ".git" / "hooks" / "pre-commit"
    hook.write_text(readme_hook())
    hook.chmod(0o755)
    selections = scratch / "config" / "model_selections.json"
    selections.parent.mkdir()
    selections.write_text(BAD)
    git(scratch, "add", "config/model_selections.json")

    refused = git(scratch, "commit", "-q", "-m", "pin", check=False)
    selections.write_text(json.dumps(GOOD))
    git(scratch, "add", "config/model_selections.json")
    accepted = git(scratch, "commit", "-q", "-m", "pin", check=False)

    assert refused.returncode != 0
    # git passes a hook's output on to stderr
    assert refused.stderr.startswith("config/model_selections.json:2:3: openai: model "
                                     "'gpt-4oo' is not served by openai"), refused.stderr
    assert "/tmp" not in refused.stdout + refused.stderr
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


@pytest.mark.slow
def test_the_pre_commit_hook_from_this_repository(scratch: Path, tmp_path: Path) -> None:
    """``pre-commit try-repo`` with a local copy of this repository (its committed state)."""
    source = tmp_path / "modelboard"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", ".pre-commit-hooks.yaml"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("core", "tui"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "modelboard")
    selections = scratch / "config" / "model_selections.json"
    selections.parent.mkdir()
    selections.write_text(BAD)
    (scratch / "notes.json").write_text("{not checked: not a selections file")
    git(scratch, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "pre-commit"), "try-repo", str(source),
                               "modelboard-validate", "--all-files"], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=900, check=False)

    refused = try_repo()
    selections.write_text(json.dumps(GOOD))
    git(scratch, "add", "-A")
    accepted = try_repo()

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "config/model_selections.json:2:3: openai: model 'gpt-4oo'" in refused.stdout
    assert "notes.json" not in refused.stdout
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert re.search(r"validate model selections\.+Passed", accepted.stdout), accepted.stdout
