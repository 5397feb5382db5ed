"""Ten real reader processes on one file: stopped, killed, deaf, unable to read, healthy.

The library sees each as it is (``store.readers()``); a write waited for reaches every
live reader, or the wait names the ones it did not reach.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_readers import TEST_HEARTBEAT_S, reader_processes, require_root, wait_until

from modelboard.core import open_store
from modelboard.core.fleet import Fleet, Reader, laggards, summary

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
        reached, waited, _ = fleet.wait_for(observer.snapshot.revision, timeout_s=10)
        assert reached and waited < 10

        stopped, killed, deaf = readers[1], readers[2], readers[3]
        stopped.pause()
        killed.kill()
        deaf.send("stop-watching")
        path.chmod(0o600)  # the unprivileged reader can no longer read the file
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
        reached, _, last = fleet.wait_for(observer.snapshot.revision, timeout_s=1)
        assert not reached
        assert {r.report.name for r in laggards(last, observer.snapshot.revision)
                if r.report} == {deaf.name, "proxy-nobody"}

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
