"""The real ``modelboard`` command in tmux at 80x24, driven with keys while another
process rewrites the file under it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
]


@pytest.fixture(autouse=True)
def _tmux_is_installed(request: pytest.FixtureRequest) -> None:
    """Skip on a laptop without tmux; in CI, where .ci/run installs it, fail instead."""
    if shutil.which("tmux") is not None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("tmux is not installed; CI must install it (see .ci/run)")
    pytest.skip("tmux is not installed (apt-get install tmux)")

FIXTURES = Path(__file__).parent.parent / "tui" / "fixtures"
COMMAND = Path(sys.executable).with_name("modelboard")


class Tmux:
    """One tmux server of our own (``-L``), so nothing touches the user's sessions."""

    def __init__(self) -> None:
        self.socket = f"modelboard-e2e-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=False)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "editor").stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "editor", *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "editor", "-l", text)

    def alive(self) -> bool:
        return self.run("has-session", "-t", "editor").returncode == 0


def wait_until(condition: Callable[[], object], what: str, timeout: float = 15.0,
               screen: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            shown = f"\nscreen:\n{screen()}" if screen else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{shown}")
        time.sleep(0.05)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux()
    yield session
    session.run("kill-server")


def rewrite_from_another_process(path: Path, code: str) -> None:
    script = ("from modelboard.core import open_store\n"
              f"store = open_store({str(path)!r}, actor='mallory@elsewhere')\n" + code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_operator_edits_while_another_process_rewrites_the_file(
        tmp_path: Path, tmux: Tmux) -> None:
    data_file = tmp_path / "model_selections.json"
    shutil.copy(FIXTURES / "selections.json", data_file)
    exit_file = tmp_path / "exit-code"
    command = f"{COMMAND} --file {data_file}; echo $? > {exit_file}"
    env = {**os.environ, "TERM": "xterm-256color", "USER": "operator", "LOGNAME": "operator"}
    env.pop("NO_COLOR", None)
    started = subprocess.run(
        ["tmux", "-L", tmux.socket, "new-session", "-d", "-s", "editor", "-x", "80", "-y", "24",
         "sh", "-c", command], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert started.returncode == 0, started.stderr
    wait_until(lambda: "gemini-2.5-pro" in tmux.screen() and "Help" in tmux.screen(),
               "the table and footer", screen=tmux.screen)
    first = tmux.screen().splitlines()
    assert len(first) == 24
    assert first[0].lstrip().startswith("modelboard")
    assert "e Edit" in first[23] and "? Help" in first[23]  # the footer fits in 80 columns

    # another process changes google: it appears in place
    rewrite_from_another_process(
        data_file, "store.set_model_selection('google', 'gemini-2.5-flash')")
    wait_until(lambda: "gemini-2.5-flash" in tmux.screen(), "the external change",
               screen=tmux.screen)
    assert "mallory" in tmux.screen()

    # filter to alice's rows (openai, vllm), edit the first with the keyboard
    tmux.keys("/")
    wait_until(lambda: "filter: provider" in tmux.screen(), "the filter line",
               screen=tmux.screen)
    tmux.type("alice")
    wait_until(lambda: "2 shown" in tmux.screen(), "the filter",
               screen=lambda: tmux.screen() + data_file.read_text())
    tmux.keys("Enter")
    # The footer shows the table's keys again once enter has handed focus back to it;
    # a key sent before that would be one more letter of the filter.
    wait_until(lambda: "e Edit" in tmux.screen().splitlines()[-1], "the table to have focus",
               screen=tmux.screen)
    tmux.keys("e")
    wait_until(lambda: "now gpt-4o" in tmux.screen(), "the edit dialog", screen=tmux.screen)
    tmux.type("gpt-4.1-mini")
    tmux.keys("Enter")
    wait_until(lambda: json.loads(data_file.read_text())["openai"]["model_name"]
               == "gpt-4.1-mini", "the save", screen=tmux.screen)
    assert json.loads(data_file.read_text())["openai"]["updated_by"].startswith("operator@")
    assert json.loads(data_file.read_text())["google"]["model_name"] == "gemini-2.5-flash"

    # the file rewritten wholesale by hand (not through modelboard): still followed
    document = json.loads(data_file.read_text())
    document["openai"]["model_name"] = "o3"
    temp = data_file.with_suffix(".tmp")
    temp.write_text(json.dumps(document, indent=2))
    os.replace(temp, data_file)
    wait_until(lambda: " o3 " in tmux.screen(), "the rewritten file", screen=tmux.screen)

    tmux.keys("Escape")  # clears the filter (and must not be read as alt+q with the next key)
    wait_until(lambda: "shown" not in tmux.screen(), "the filter to clear", screen=tmux.screen)
    tmux.keys("q")
    wait_until(lambda: exit_file.exists(), "the editor to quit", screen=tmux.screen)
    assert exit_file.read_text().strip() == "0"
