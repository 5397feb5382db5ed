"""Opening a file this user cannot write: the editor goes read-only by itself and says why.

The tests run as root, who may write anything, so the editor runs in a subprocess as
``nobody`` (a file owned by someone else) and inside a read-only bind mount.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tui_helpers import FIXTURES

pytestmark = pytest.mark.timeout(120)

EDITOR_SESSION = textwrap.dedent("""
    import asyncio, json, sys
    sys.path.insert(0, {helpers!r})
    from tui_helpers import fixed_clock, screen_text
    from modelboard.tui import ModelboardApp
    from modelboard.tui.app import open_for_editing

    async def main():
        store, reason = open_for_editing({path!r})
        app = ModelboardApp(store, read_only_reason=reason, clock=fixed_clock,
                            cursor_blink=False)
        async with app.run_test(size=(100, 24)) as pilot:
            await pilot.pause()
            for key in ("e", "l", "d", "space", "b"):
                await pilot.press(key)
                await pilot.pause()
            text = screen_text(app)
            on_main = app.screen is app.main
        store.close()
        print(json.dumps({{"reason": reason, "read_only": store.read_only, "text": text,
                          "on_main": on_main}}))

    asyncio.run(main())
""")


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder others may read (pytest's own temp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="modelboard-ro-", dir="/tmp"))
    folder.chmod(0o755)
    shutil.copy(FIXTURES / "selections.json", folder / "model_selections.json")
    (folder / "model_selections.json").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_session(command: list[str], path: Path) -> dict[str, object]:
    code = EDITOR_SESSION.format(helpers=str(Path(__file__).parent), path=str(path))
    done = subprocess.run([*command, sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=90, check=False,
                          env={**os.environ, "HOME": "/tmp"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to run the editor as another user")
def test_file_owned_by_someone_else_opens_read_only_and_says_why(shared_folder: Path) -> None:
    before = listing(shared_folder)
    data_file = shared_folder / "model_selections.json"
    result = run_session(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                         data_file)
    assert result["read_only"] is True
    assert result["reason"] == (f"you cannot write {data_file} (permission denied); "
                                "opened read-only")
    text = str(result["text"])
    assert "READ-ONLY" in text.splitlines()[0]
    assert "you cannot write" in text and "permission denied" in text
    assert "gpt-4o" in text  # the selections are shown all the same
    assert result["on_main"] is True  # no write dialog opened
    assert listing(shared_folder) == before


def _can_bind_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_bind_mount(), reason="needs mount namespaces")
def test_read_only_mount_opens_read_only_and_writes_nothing(shared_folder: Path) -> None:
    before = listing(shared_folder)
    data_file = shared_folder / "model_selections.json"
    mount = (f"mount --bind -o ro {shared_folder} {shared_folder} && exec \"$@\"")
    result = run_session(["unshare", "-m", "--propagation", "private", "sh", "-c", mount,
                          "sh"], data_file)
    assert result["read_only"] is True
    assert result["reason"] == (f"you cannot write {data_file} (read-only file system); "
                                "opened read-only")
    assert "READ-ONLY" in str(result["text"]).splitlines()[0]
    assert listing(shared_folder) == before
