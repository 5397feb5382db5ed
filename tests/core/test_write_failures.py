"""Writes that cannot happen (a read-only folder, a full disk): one clear line, the old
file intact, no temporary files left behind, and the store's state unchanged."""

from __future__ import annotations

import contextlib
import errno
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

from modelboard.core import open_store
from modelboard.core.errors import ConfigurationError

NOBODY = 65534

# Tries one write and reports, as JSON, what the store said and what it holds after.
# With a uid argument it drops to that user first (Python itself lives under /root).
ATTEMPT_WRITE = textwrap.dedent("""
    import json, logging, os, sys  # logging: the core imports it when it first logs
    from modelboard.core import open_store
    from modelboard.core.errors import ModelboardError
    if len(sys.argv) > 2:
        uid = int(sys.argv[2])
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
    store = open_store(sys.argv[1], actor="writer")
    try:
        store.set_model_selection("openai", "gpt-4.1")
        error = None
    except ModelboardError as exc:
        error = {"type": type(exc).__name__, "message": str(exc)}
    print(json.dumps({"error": error,
                      "model": store.get_model_selection("openai").model_name}))
""")


def attempt_write(data_file: Path, *as_user: str, **popen: object) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", ATTEMPT_WRITE, str(data_file), *as_user],
                          capture_output=True, text=True, timeout=60, check=False,
                          **popen)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def snapshot_folder(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; a lock file's only as "there" (it says who held it last)."""
    return {p.name: b"(lock)" if p.name.endswith(".lock") else p.read_bytes()
            for p in sorted(folder.iterdir())}


def assert_clean_failure(result: dict[str, object], data_file: Path, before: dict[str, bytes],
                         *, fragment: str) -> None:
    error = result["error"]
    assert isinstance(error, dict), result
    assert error["type"] == "ConfigurationError"
    message = error["message"]
    assert "\n" not in message and fragment in message, message
    assert str(data_file.parent) in message
    assert result["model"] == "gpt-4o"                  # the store kept its state
    after = snapshot_folder(data_file.parent)
    assert after == before                               # old file intact, nothing left over
    assert not [name for name in after if name.endswith(".tmp")]


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="modelboard-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            with contextlib.suppress(OSError):
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder, ignore_errors=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


@needs_root
def test_read_only_folder_after_earlier_writes(shared_folder: Path) -> None:
    data_file = shared_folder / "config" / "model_selections.json"
    open_store(data_file).set_model_selection("openai", "gpt-4o")
    for path in [data_file.parent, *data_file.parent.iterdir()]:
        os.chown(path, NOBODY, NOBODY)
    data_file.parent.chmod(0o555)   # the owner may read, nobody may create files
    before = snapshot_folder(data_file.parent)

    result = attempt_write(data_file, str(NOBODY))

    assert_clean_failure(result, data_file, before, fragment="Permission denied")
    assert "the previous file is intact" in result["error"]["message"]  # type: ignore[index]


@needs_root
def test_read_only_folder_with_no_lock_file_yet(shared_folder: Path) -> None:
    data_file = shared_folder / "config" / "model_selections.json"
    data_file.parent.mkdir()
    data_file.write_text(json.dumps({"openai": "gpt-4o"}))
    data_file.chmod(0o644)   # root's file, readable by all, writable by none but root
    before = snapshot_folder(data_file.parent)

    result = attempt_write(data_file, str(NOBODY))

    assert_clean_failure(result, data_file, before,
                         fragment="model_selections.json.lock: cannot take the lock: "
                                  "Permission denied")


def _limit_file_size() -> None:
    import resource
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_full_disk_simulated_by_a_file_size_limit(data_file: Path) -> None:
    data_file.parent.mkdir(parents=True)
    # Fields from a newer version are kept on rewrite, so the next write is as big.
    data_file.write_text(json.dumps({"openai": {"model_name": "gpt-4o", "notes": "x" * 6000}}))
    lock = data_file.with_name("model_selections.json.lock")
    lock.touch()  # as an earlier write left it, with its twin
    os.link(lock, data_file.with_name(".model_selections.json.lock"))
    before = snapshot_folder(data_file.parent)

    result = attempt_write(data_file, preexec_fn=_limit_file_size)

    assert_clean_failure(result, data_file, before, fragment="disk full")


@contextlib.contextmanager
def small_tmpfs(mount_point: Path) -> Iterator[Path]:
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@needs_root
def test_full_disk_on_a_real_small_filesystem(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        data_file = disk / "model_selections.json"
        store = open_store(data_file)
        store.set_model_selection("openai", "gpt-4o")
        filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(filler, b"\0" * 4096)
        finally:
            os.close(filler)
        # Confirm the disk is really full before blaming the store for anything.
        with pytest.raises(OSError) as full:
            (disk / "probe").write_bytes(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
        (disk / "probe").unlink(missing_ok=True)
        before = {n: b for n, b in snapshot_folder(disk).items() if n != "filler"}

        with pytest.raises(ConfigurationError) as raised:
            store.set_model_selection("openai", "gpt-4.1")

        message = str(raised.value)
        assert "disk full" in message and "the previous file is intact" in message
        assert message.startswith(str(disk))
        assert store.get_model_selection("openai").model_name == "gpt-4o"
        after = {n: b for n, b in snapshot_folder(disk).items() if n != "filler"}
        assert after == before

        (disk / "filler").unlink()   # space again: the same store writes normally
        assert store.set_model_selection("openai", "gpt-4.1").model_name == "gpt-4.1"
        assert json.loads(data_file.read_text())["openai"]["model_name"] == "gpt-4.1"


def test_a_folder_that_cannot_be_synced_after_the_rename_is_not_a_failed_write(
        data_file: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Some filesystems refuse to fsync a folder (EINVAL); the rename has happened by then.

    Saying "nothing was written, the previous file is intact" would be false, and the store
    would then refuse its own next change to the provider as someone else's.
    """
    from modelboard.core import filebackend

    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")

    def refuse(_folder: Path) -> None:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(filebackend, "_fsync_folder", refuse)
    assert store.set_model_selection("openai", "gpt-4.1").model_name == "gpt-4.1"
    assert json.loads(data_file.read_text())["openai"]["model_name"] == "gpt-4.1"
    assert store.set_model_selection("openai", "o3").model_name == "o3"
    assert json.loads(data_file.read_text())["openai"]["model_name"] == "o3"
    assert "intact" not in caplog.text
