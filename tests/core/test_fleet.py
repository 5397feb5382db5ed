"""Fleet reports: the status rule, bad reports, clocks, and how a store reports itself."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fleet_readers import wait_until

from modelboard.core import HistoryEntry, open_store
from modelboard.core.fleet import (
    Fleet,
    ReaderReport,
    judge,
    summary,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def a_report(**changes: object) -> ReaderReport:
    fields: dict[str, object] = dict(
        id="host-1-abcdef", host="host", pid=1, name="proxy", store="/srv/m.json",
        revision="r2", loaded_at=T0, load_error=None, warnings=(), watching=True,
        version="0.1.0", started_at=T0, sequence=5, interval_s=2.0, uid=0, written_at=T0)
    fields.update(changes)
    return ReaderReport(**fields)  # type: ignore[arg-type]


def entry(revision: str, minutes: int) -> HistoryEntry:
    return HistoryEntry(T0 + timedelta(minutes=minutes), "alice", "openai", "set", None,
                        "gpt-4o", revision)


HISTORY = [entry("r5", 30), entry("r4", 20), entry("r4", 20), entry("r3", 10), entry("r2", 0)]


@pytest.mark.parametrize(("changes", "age", "expected"), [
    ({"revision": "r5"}, 0.0, ("current", None, None)),
    ({"revision": "r5"}, 6.1, ("stale", None, None)),          # three intervals of 2 s missed
    ({"revision": "r5"}, 5.9, ("current", None, None)),
    ({"load_error": "m.json:1:1: bad"}, 0.0, ("error", None, None)),
    ({"load_error": "m.json:1:1: bad"}, 60.0, ("stale", None, None)),
    # r2 misses r3, r4 (one change of two lines) and r5: since r3 was written.
    ({"revision": "r2"}, 0.0, ("behind", 3, T0 + timedelta(minutes=10))),
    ({"revision": "r4"}, 0.0, ("behind", 1, T0 + timedelta(minutes=30))),
    ({"revision": "gone"}, 0.0, ("behind", None, T0)),        # older than the history shows
])
def test_one_rule_judges_every_reader(changes: dict[str, object], age: float,
                                      expected: tuple[object, ...]) -> None:
    assert judge(a_report(**changes), age_s=age, latest_revision="r5",
                 history=HISTORY) == expected


def test_a_report_round_trips_and_rejects_what_is_not_one() -> None:
    report = a_report()
    assert ReaderReport.from_bytes(report.to_bytes()) == report
    good = json.loads(report.to_bytes())
    cases = {
        b"{not json": "not JSON",
        b"[]": "not a modelboard reader report",
        json.dumps({**good, "format": "other"}).encode(): "not a modelboard reader report",
        json.dumps({**good, "format_version": 2}).encode(): "newer than this modelboard",
        json.dumps({**good, "pid": "1"}).encode(): "expected a count",
        json.dumps({**good, "id": "../etc"}).encode(): "bad reader id",
        json.dumps({k: v for k, v in good.items() if k != "revision"}).encode(): "'revision'",
        b"x" * 70_000: "not a report",
    }
    for data, reason in cases.items():
        with pytest.raises(ValueError, match=reason):
            ReaderReport.from_bytes(data)


def test_a_watching_store_reports_itself_and_close_removes_it(data_file: Path) -> None:
    writer = open_store(data_file)
    writer.set_model_selection("openai", "gpt-4o")
    reader = open_store(data_file, watch=True, read_only=True, reader_name="proxy-eu-1")
    try:
        (seen,) = wait_until(writer.readers, lambda rs: len(rs) == 1)
        assert seen.status == "current" and seen.report is not None
        assert (seen.report.name, seen.report.pid, seen.report.watching) == (
            "proxy-eu-1", os.getpid(), True)
        assert seen.report.revision == writer.snapshot.revision
        folder = data_file.with_name("model_selections.json.readers")
        (report_file,) = folder.iterdir()
        assert report_file.stat().st_mode & 0o777 == data_file.stat().st_mode & 0o777
        assert json.loads(json.dumps(seen.to_json()))["report"]["name"] == "proxy-eu-1"
    finally:
        reader.close()
    assert writer.readers() == []
    assert not folder.exists()  # the last reader leaves no empty folder behind


def test_reporting_can_be_turned_off(data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store(data_file).set_model_selection("openai", "gpt-4o")
    quiet = open_store(data_file, watch=True, report=False)
    monkeypatch.setenv("MODELBOARD_REPORT", "0")
    also_quiet = open_store(data_file, watch=True)
    try:
        assert quiet._reporter is None and also_quiet._reporter is None
        assert open_store(data_file).readers() == []
    finally:
        quiet.close()
        also_quiet.close()


def test_bad_reports_are_unreadable_and_never_trusted(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    folder = data_file.with_name("model_selections.json.readers")
    folder.mkdir()
    current = a_report(id="h-9-aaaaaa", store=str(data_file), revision=store.snapshot.revision,
                       written_at=datetime.now(UTC), uid=os.geteuid())
    (folder / "garbage.json").write_text("{")
    (folder / "future.json").write_text(json.dumps({
        **json.loads(current.to_bytes()), "id": "future", "format_version": 99}))
    # A report claiming to be current, but under another reader's name: forged or copied.
    (folder / "h-1-bbbbbb.json").write_bytes(current.to_bytes())
    (folder / "link.json").symlink_to(folder / "garbage.json")
    os.mkfifo(folder / "fifo.json")  # opened without blocking, refused as not a file
    readers = Fleet(store).readers()
    assert {Path(r.key).name: (r.status, r.problem) for r in readers} == {
        "garbage.json": ("unreadable", "not JSON (Expecting property name enclosed in double "
                                       "quotes: line 1 column 2 (char 1))"),
        "future.json": ("unreadable", "report version 99 is newer than this modelboard "
                                      "understands (1)"),
        "h-1-bbbbbb.json": ("unreadable", "its name does not match the reader it describes"),
        "link.json": ("unreadable", "a symlink"),
        "fifo.json": ("unreadable", "not a regular file"),
    }
    assert summary(readers) == "5 readers: 5 unreadable"
    waited = Fleet(store).wait_for(store.snapshot.revision, timeout_s=0.1)
    assert not waited.reached and (waited.count, waited.total) == (0, 5)


def test_a_report_owned_by_another_user_is_not_trusted(data_file: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file away")
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    folder = data_file.with_name("model_selections.json.readers")
    folder.mkdir()
    report = a_report(id="h-2-cccccc", store=str(data_file), revision=store.snapshot.revision,
                      uid=0)
    path = folder / "h-2-cccccc.json"
    path.write_bytes(report.to_bytes())
    os.chown(path, 65534, 65534)  # says root wrote it; nobody did
    (seen,) = Fleet(store).readers()
    assert (seen.status, seen.problem) == ("unreadable",
                                           "written by another user than the reader it names")


def test_another_hosts_clock_never_makes_a_live_reader_stale(data_file: Path) -> None:
    """A report from a host whose clock is ten minutes behind (the file's mtime shows it
    old) is live as soon as its sequence is seen to move."""
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    folder = data_file.with_name("model_selections.json.readers")
    folder.mkdir()
    path = folder / "far-1-dddddd.json"

    def beat(sequence: int) -> None:
        path.write_bytes(a_report(id="far-1-dddddd", host="far", store=str(data_file),
                                  revision=store.snapshot.revision, sequence=sequence,
                                  interval_s=0.2, uid=os.geteuid()).to_bytes())
        skewed = time.time() - 600
        os.utime(path, (skewed, skewed))

    beat(1)
    fleet = Fleet(store)
    assert [r.status for r in fleet.readers()] == ["stale"]  # one look, by the clock alone
    beat(2)
    assert [r.status for r in fleet.readers()] == ["current"]  # it moved: alive
    # and one that stops moving is stale again after three of its intervals, by our clock
    wait_until(fleet.readers, lambda rs: [r.status for r in rs] == ["stale"], timeout=5)
    # A one-time look (the fleet command) gives a doubtful stale report a second look.
    beat(3)
    later = Fleet(store)
    threading.Timer(0.1, beat, args=(4,)).start()
    assert [r.status for r in later.readers(confirm=True)] == ["current"]


def test_a_report_that_cannot_be_written_is_logged_once(data_file: Path,
                                                        caplog: pytest.LogCaptureFixture,
                                                        ) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    data_file.with_name("model_selections.json.readers").write_text("in the way")
    caplog.set_level(logging.INFO, logger="modelboard")
    reader = open_store(data_file, watch=True)
    try:
        assert reader._reporter is not None
        for _ in range(3):
            reader._reporter.beat()
        assert reader.get_model_selection("openai") is not None  # the store still serves
        warnings = [r.getMessage() for r in caplog.records if "cannot report" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "set MODELBOARD_READERS_DIR" in warnings[0]
        data_file.with_name("model_selections.json.readers").unlink()
        reader._reporter.beat()
        assert any("reporting this reader again" in r.getMessage() for r in caplog.records)
    finally:
        reader.close()
