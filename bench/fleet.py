"""Figure 10: the fleet: how soon a write is seen current everywhere, and what reporting costs.

- reach: a write in this process until every one of 10 (and 50) reader processes reports
  the new revision, as ``--wait`` sees it (their report files, or their Redis keys),
  beside the same write reaching one subscriber process (the baseline, in the same run,
  on the same writes);
- heartbeat: the CPU one heartbeat costs its process (writing the report), times the
  heartbeats of an hour at the default interval;
- request path: ``get_model_selection`` in a store that reports, against one that does
  not (the read path holds no fleet code; the ratio shows it).
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import Figure, median, subprocess_env, time_per_call

LINE_TIMEOUT_S = 60.0

_READER = textwrap.dedent("""
    import sys, time
    from modelboard.core import open_store
    store = open_store(sys.argv[1], read_only=True, reader_name=sys.argv[2])
    if sys.argv[2] == "subscriber":
        store.subscribe(lambda event: event.changes and print(time.monotonic(), flush=True))
    store.start_watching()
    print("ready", flush=True)
    sys.stdin.readline()  # until the parent is done
""")


@contextlib.contextmanager
def _processes(location: str, count: int) -> Iterator[queue.Queue[str]]:
    """``count`` readers and one subscriber; yields the subscriber's lines."""
    env = {**subprocess_env(), "MODELBOARD_HEARTBEAT_S": "5"}
    names = [f"reader-{n}" for n in range(count)] + ["subscriber"]
    children = [subprocess.Popen([sys.executable, "-c", _READER, location, name],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env=env) for name in names]
    lines: queue.Queue[str] = queue.Queue()
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a reader process did not start")
        stdout = children[-1].stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line.strip())

        threading.Thread(target=pump, daemon=True).start()
        yield lines
    finally:
        for child in children:
            with contextlib.suppress(OSError):
                assert child.stdin is not None
                child.stdin.close()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _reach(location: str, count: int, writes: int) -> tuple[float, float]:
    """Medians (ms): write to every reader current; write to the one subscriber."""
    from modelboard.core import open_store
    from modelboard.core.fleet import Fleet

    writer = open_store(location, actor="bench", report=False)
    writer.set_model_selection("vllm", "warm-up")
    fleet_times, subscriber_times = [], []
    with _processes(location, count) as lines:
        fleet = Fleet(writer)
        deadline = time.monotonic() + LINE_TIMEOUT_S
        while len(fleet.readers()) < count + 1 or not fleet.wait_for(
                writer.snapshot.revision, timeout_s=LINE_TIMEOUT_S).reached:
            if time.monotonic() > deadline:
                raise RuntimeError("the readers never all reported")
            time.sleep(0.05)
        for number in range(writes):
            began = time.monotonic()
            writer.set_model_selection("vllm", f"model-{number}")
            waited = fleet.wait_for(writer.snapshot.revision, timeout_s=LINE_TIMEOUT_S,
                                    poll_s=0.002)
            fleet_times.append(time.monotonic() - began)
            if not waited.reached or waited.total != count + 1:
                raise RuntimeError(f"reached {waited.count} of {waited.total} readers")
            subscriber_times.append(float(lines.get(timeout=LINE_TIMEOUT_S)) - began)
            while not lines.empty():
                lines.get()
            time.sleep(0.05)  # let the readers settle between writes
    writer.close()
    return median(fleet_times) * 1000, median(subscriber_times) * 1000


def _heartbeat_cost(folder: str, beats: int) -> float:
    """CPU seconds one heartbeat costs its process (the report written to its file)."""
    from modelboard.core import open_store

    path = os.path.join(folder, "heartbeat.json")
    open_store(path, report=False).set_model_selection("vllm", "m")
    store = open_store(path, read_only=True)
    reporter = store._reporter
    assert reporter is not None
    reporter.beat()  # the first one looks modelboard's version up, once per process
    began = time.process_time()
    for _ in range(beats):
        reporter.beat()
    spent = (time.process_time() - began) / beats
    store.close()
    return spent


def _read_cost(folder: str) -> tuple[float, float]:
    from modelboard.core import open_store

    path = os.path.join(folder, "reads.json")
    open_store(path, report=False).set_model_selection("vllm", "m")
    reporting = open_store(path, read_only=True, watch=True)
    quiet = open_store(path, read_only=True, watch=True, report=False)
    try:
        ours = min(time_per_call(lambda: reporting.get_model_selection("vllm"))
                   for _ in range(3))
        base = min(time_per_call(lambda: quiet.get_model_selection("vllm")) for _ in range(3))
    finally:
        reporting.close()
        quiet.close()
    return ours * 1e9, base * 1e9


def run(quick: bool) -> list[Figure]:
    from modelboard.core.fleet import HEARTBEAT_S

    figures: list[Figure] = []
    writes = 5 if quick else 15
    counts = (10,) if quick else (10, 50)
    with tempfile.TemporaryDirectory() as folder:
        for count in counts:
            ours, base = _reach(os.path.join(folder, f"fleet-{count}.json"), count, writes)
            figures.append(Figure(
                f"10 fleet (file): a write until {count} readers report it, median", ours,
                base, "ms", note="baseline: the same write reaching one subscriber process"))
        for count in counts:
            try:
                from bench.redis import _redis_server
            except ImportError as exc:  # redis-py missing: said in the table
                raise RuntimeError(f"the Redis figures need redis-py ({exc})") from None
            server_folder = Path(folder) / f"redis-{count}"
            server_folder.mkdir()
            with _redis_server(str(server_folder)) as port:
                ours, base = _reach(f"redis://127.0.0.1:{port}/0?key=fleet{count}", count,
                                    writes)
            figures.append(Figure(
                f"10 fleet (redis): a write until {count} readers report it, median", ours,
                base, "ms", note="baseline: the same write reaching one subscriber process"))
        per_beat = _heartbeat_cost(folder, 200 if quick else 1000)
        per_hour = per_beat * 3600 / HEARTBEAT_S
        figures.append(Figure(
            "10 fleet: heartbeat CPU per hour of a reader process", per_hour, None,
            "s CPU/hour", target="< 1 s/hour", passed=per_hour < 1.0,
            note=f"{per_beat * 1e6:.0f} µs per heartbeat, one every {HEARTBEAT_S:.0f} s"))
        ours, base = _read_cost(folder)
        figures.append(Figure(
            "10 fleet: get_model_selection in a reporting store", ours, base, "ns/read",
            target="ratio <= 1.5", passed=ours <= 1.5 * base,
            note="baseline: the same read in a store with report=False"))
    return figures
