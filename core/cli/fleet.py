"""``modelboard fleet`` and the ``--wait`` of every write command."""

from __future__ import annotations

from typing import Any

from ..fleet import Fleet, Reader, Waited, duration, summary, utc_now
from ..store import SelectionStore
from .output import table
from .session import EXIT_OK, EXIT_REFUSED, Session
from .shapes import reader_json, wait_json

__all__ = ["cmd_fleet", "finish_write", "wait_if_asked"]

def _revision(revision: str) -> str:
    return revision[:6] + "…"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _readers(count: int) -> str:
    return f"{count} reader{'s' * (count != 1)}"


def _wait(session: Session, store: SelectionStore) -> Waited | None:
    timeout = getattr(session.args, "wait", None)
    if timeout is None:
        return None
    return Fleet(store).wait_for(store.snapshot.revision, timeout_s=timeout)


def finish_write(session: Session, store: SelectionStore, result: dict[str, Any]) -> int:
    """The end of a write command under ``--json``: wait if asked, print ``result`` with
    ``wait`` and the store's ``revision``; exit 1 if the wait did not reach every reader."""
    waited = _wait(session, store)
    result.setdefault("revision", store.stored_snapshot.revision)
    result["wait"] = wait_json(waited)
    session.print_json(result)
    return EXIT_REFUSED if waited is not None and not waited.reached else EXIT_OK


def wait_if_asked(session: Session, store: SelectionStore) -> int:
    """After a write: with ``--wait``, wait for every reader and say how it went."""
    waited = _wait(session, store)
    if waited is None:
        return EXIT_OK
    timeout = session.args.wait
    if waited.reached:
        session.terminal.line(f"reached {waited.count} of {_readers(waited.total)} "
                              f"in {_ms(waited.seconds)}")
        return EXIT_OK
    session.terminal.error(_not_reached(waited, timeout))
    return EXIT_REFUSED


def _not_reached(waited: Waited, timeout: float) -> str:
    """``7 of 8 after 10 s; proxy-eu-3 (host-3, pid 77) still on 1a2b3c…``."""
    named = []
    for reader in waited.laggards:
        if reader.report is None:
            named.append(f"{reader.key} {reader.describe()}")
            continue
        note = f" ({reader.describe()})" if reader.status == "error" else ""
        named.append(f"{reader.label} still on {_revision(reader.report.revision)}{note}")
    return f"{waited.count} of {waited.total} after {timeout:g} s; " + "; ".join(named)


def _row(reader: Reader) -> tuple[str, ...]:
    report = reader.report
    if report is None:
        return (reader.key.rsplit("/", 1)[-1], "-", "-", "-", "-", reader.describe())
    return (report.name, report.host, str(report.pid), _revision(report.revision),
            duration((utc_now() - report.loaded_at).total_seconds()), reader.describe())


def cmd_fleet(session: Session) -> int:
    # Not open_for_reading: a data file that does not load is when the fleet matters most
    # (every reader that reloaded it shows its error); it is said, not a refusal.
    store = session.open(read_only=True)
    readers = Fleet(store).readers(confirm=True)
    terminal = session.terminal
    if store.load_error is not None and not session.as_json:
        terminal.error(f"{store.load_error}; readers are judged against the last "
                       "revision that loaded")
    healthy = all(r.status == "current" for r in readers if r.live)
    if session.as_json:
        session.print_json({"revision": store.snapshot.revision, "summary": summary(readers),
                            "all_current": healthy, "readers": [reader_json(r) for r in readers]})
    else:
        if readers:
            headers = ("NAME", "HOST", "PID", "REVISION", "SINCE", "STATUS")
            for line in table(terminal, headers, [_row(r) for r in readers],
                              shrink=((1, 8), (0, 12), (5, 24))):
                terminal.line(line)
        terminal.line(summary(readers))
    return EXIT_OK if healthy else EXIT_REFUSED
