"""Ten real reader processes on one file: stopped, killed, deaf, unable to read, healthy.

The library sees each as it is (``store.readers()``); a write waited for reaches every
live reader, or the wait names the ones it did not reach.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_readers import TEST_HEARTBEAT_S, reader_processes, require_root, wait_until

from modelboard.core import open_store
from modelboard.core.fleet import Fleet, Reader, summary

NOBODY = 65534
pytestmark = pytest.mark.slow


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="modelboard-fleet-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def statuses(readers: list[Reader]) -> dict[str, str]:
    return {r.report.name if r.report else r.key: r.status for r in readers}


def test_ten_readers_on_one_file_each_shown_as_it_is(shared_folder: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    require_root("one reader runs as an unprivileged user")
    path = shared_folder / "model_selections.json"
    writer = open_store(path, actor="deployer")
    writer.set_model_selection("openai", "gpt-4o")
    path.chmod(0o644)  # the unprivileged reader may read it, for now
    # The unprivileged reader cannot write beside root's file: it reports elsewhere, and
    # observers are told where ($MODELBOARD_READERS_DIR) too.
    elsewhere = shared_folder / "reports"
    elsewhere.mkdir()
    os.chown(elsewhere, NOBODY, NOBODY)
    monkeypatch.setenv("MODELBOARD_READERS_DIR", str(elsewhere))
    names = [f"proxy-{n}" for n in range(9)]
    with reader_processes(str(path), names) as readers, \
            reader_processes(str(path), ["proxy-nobody"], uid=NOBODY,
                             env={"MODELBOARD_READERS_DIR": str(elsewhere)}) as [unprivileged]:
        observer = open_store(path, actor="deployer")
        fleet = Fleet(observer)
        everyone = {*names, "proxy-nobody"}
        seen = wait_until(fleet.readers, lambda rs: statuses(rs) == dict.fromkeys(
            everyone, "current"))
        assert summary(seen) == "10 readers: 10 current"
        assert {r.report.pid for r in seen if r.report} == {
            *(r.pid for r in readers), unprivileged.pid}
        assert any(r.key.startswith(str(elsewhere)) for r in seen)

        # A change reaches every reader, and the wait says so.
        observer.set_model_selection("openai", "gpt-4.1")
        waited = fleet.wait_for(observer.snapshot.revision, timeout_s=10)
        assert waited.reached and (waited.count, waited.total) == (10, 10)
        done = modelboard(path, "set", "openai", "gpt-4o", "--wait")
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(r"openai: gpt-4\.1 +-> gpt-4o\nreached 10 of 10 readers in "
                            r"\d+ ms\n", done.stdout), done.stdout
        assert modelboard(path, "fleet").returncode == 0

        stopped, killed, deaf = readers[1], readers[2], readers[3]
        stopped.pause()
        killed.kill()
        deaf.send("stop-watching")
        path.chmod(0o600)  # the unprivileged reader can no longer read the file
        observer.reload()
        observer.set_model_selection("openai", "gpt-4o-mini")
        expected = {**dict.fromkeys(everyone, "current"), stopped.name: "stale",
                    killed.name: "stale", deaf.name: "behind", "proxy-nobody": "error"}
        seen = wait_until(fleet.readers, lambda rs: statuses(rs) == expected,
                          timeout=3 * TEST_HEARTBEAT_S + 15)
        assert summary(seen) == "10 readers: 6 current, 1 behind, 2 stale, 1 error"
        by_name = {r.report.name: r for r in seen if r.report}
        assert by_name[deaf.name].behind_changes == 1
        assert by_name[deaf.name].describe().startswith("behind by 1 change for ")
        assert by_name[deaf.name].report.watching is False  # type: ignore[union-attr]
        assert "Permission denied" in by_name["proxy-nobody"].describe()

        # The wait fails, naming the deaf reader and the one in error (stale ones are
        # not live: nothing they said counts either way).
        waited = fleet.wait_for(observer.snapshot.revision, timeout_s=1)
        assert not waited.reached and (waited.count, waited.total) == (6, 8)
        assert {r.report.name for r in waited.laggards if r.report} == {deaf.name,
                                                                        "proxy-nobody"}

        # The command line shows each, and a write waited for names the laggards.
        done = modelboard(path, "fleet")
        assert done.returncode == 1 and done.stdout, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["NAME", "HOST", "PID", "REVISION", "SINCE", "STATUS"]
        assert lines[-1] == "10 readers: 6 current, 1 behind, 2 stale, 1 error"
        rows = {line.split()[0]: line for line in lines[1:-1]}
        assert "behind by 1 change for" in rows[deaf.name]
        assert f" {killed.pid} " in rows[killed.name] and "stale (no heartbeat for" in \
            rows[killed.name]
        assert "stale" in rows[stopped.name] and "error: " in rows["proxy-nobody"]
        assert rows["proxy-0"].endswith("current")
        done = modelboard(path, "lock", "openai", "--wait=1")
        assert done.returncode == 1
        message = done.stderr.strip()
        assert message.startswith("modelboard: 6 of 8 after 1 s; "), message
        assert f"{deaf.name} ({socket.gethostname()}, pid {deaf.pid}) still on " in message
        assert "proxy-nobody (" in message and "(error: " in message
        assert stopped.name not in message and killed.name not in message

        # SIGCONT: the stopped reader catches up and is current again.
        stopped.resume()
        wait_until(fleet.readers, lambda rs: statuses(rs).get(stopped.name) == "current")

        # The killed reader's report stays (stale) until it has been silent for an hour;
        # an hour is simulated by its file's mtime, the clock staleness is judged by.
        (report_file,) = [Path(r.key) for r in fleet.readers() if r.report
                          and r.report.pid == killed.pid]
        an_hour_ago = report_file.stat().st_mtime - 3601
        os.utime(report_file, (an_hour_ago, an_hour_ago))
        assert killed.name not in statuses(Fleet(observer).readers())
        assert not report_file.exists()

        # close() removes the report.
        readers[0].send("close")
        wait_until(fleet.readers, lambda rs: readers[0].name not in statuses(rs))


def modelboard(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelboard.core.cli", "--file", str(path),
                           *args], capture_output=True, text=True, timeout=60, check=False)


def test_a_forked_child_reports_as_itself(data_file: Path) -> None:
    """After fork() the child has a report of its own; the parent's stays the parent's."""
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    observer = open_store(data_file)
    watcher = open_store(data_file, watch=True, reader_name="forking-proxy")
    try:
        wait_until(observer.readers, lambda rs: len(rs) == 1)
        pid = os.fork()
        if pid == 0:  # the child: its report appears beside the parent's, then it leaves
            try:
                wait_until(observer.readers, lambda rs: os.getpid() in {
                    r.report.pid for r in rs if r.report}, timeout=10)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        pids = {r.report.pid for r in observer.readers() if r.report}
        assert os.getpid() in pids
    finally:
        watcher.close()
