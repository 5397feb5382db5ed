"""The README's live-reload examples run as written and print what the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def live_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Live reload\n")
    return text[start:text.index("\n## ", start + 1)]


def examples() -> list[tuple[str, str | None]]:
    """Each python block of the section, with the text block right after it (its output)."""
    blocks = re.findall(r"^```(\w+)\n(.*?)^```\n", live_section(), re.M | re.S)
    found: list[tuple[str, str | None]] = []
    for index, (language, body) in enumerate(blocks):
        if language == "python":
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            output = following[1] if following and following[0] == "text" else None
            found.append((body, output))
    return found


def test_the_section_has_a_threaded_and_an_asyncio_example() -> None:
    codes = [code for code, _output in examples()]
    assert len(codes) == 2
    assert "with store:" in codes[0] and "store.changes()" in codes[1]


def test_each_example_runs_on_its_own_twice_and_prints_what_the_readme_shows(
        tmp_path: Path) -> None:
    """Each on its own, in an empty folder, and again: as a reader trying one would."""
    env = {key: value for key, value in os.environ.items() if key != "MODELBOARD_FILE"}
    for number, (code, expected) in enumerate(examples()):
        folder = tmp_path / f"example-{number}"
        folder.mkdir()
        for _attempt in range(2):
            done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr
            if expected is not None:
                assert done.stdout == expected
        assert list(folder.iterdir()) == []  # the examples leave the reader's folder alone
