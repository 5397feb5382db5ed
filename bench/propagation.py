"""Figure 3: how fast another process's change reaches a watching store's subscribers.

Another process replaces the file atomically (temp file, fsync, rename) and notes the
time just after the rename; here, the store's subscriber notes when it hears of the
new revision. The baseline is raw watchfiles on the same folder with the same step and
debounce, measured in the same run, in alternating blocks so that both see the same
machine. Both clocks are CLOCK_MONOTONIC, which processes share.

Also measured, for the same watching store: its idle CPU beside raw watchfiles', the
reload at 10,000 providers as it happens in the watch thread (propagation at that size),
and the per-call latency of a proxy thread calling ``get_model_selection`` while the
watch thread reloads 10,000 providers again and again, beside the same loop idle.
"""

from __future__ import annotations

import contextlib
import queue
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.common import (
    Figure,
    any_model_catalog,
    median,
    percentile,
    provider_names,
    sample_document,
    subprocess_env,
)

#: The other process: on each line "<index>", replace the file with variant <index>
#: and print the monotonic time (ns) just after the rename; "loop <n>" writes n
#: variants back to back.
_WRITER = r"""
import os, random, sys, time
path, variants_folder = sys.argv[1], sys.argv[2]
count, jitter_ms = int(sys.argv[3]), float(sys.argv[4])
folder = os.path.dirname(path)
variants = [open(os.path.join(variants_folder, f"{i}.json"), "rb").read() for i in range(count)]

def replace(index):
    temp = os.path.join(folder, f".bench.{index}.tmp")
    with open(temp, "wb") as handle:
        handle.write(variants[index % count])
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return time.monotonic_ns()

folder_fd = os.open(folder, os.O_RDONLY)
for line in sys.stdin:
    if line.startswith("loop"):
        for index in range(int(line.split()[1])):
            replace(index)
        print("done", flush=True)
        continue
    time.sleep(random.uniform(0, jitter_ms) / 1e3)  # spread writes over the watch step
    written = replace(int(line))
    os.fsync(folder_fd)
    print(written, flush=True)
"""


def _variant(document: bytes, index: int) -> bytes:
    """The document with its first provider's model changed: a new revision, same size class."""
    changed = document.replace(b'"model_name": "gpt-4o-mini"',
                               f'"model_name": "variant-{index:04d}"'.encode(), 1)
    assert changed != document
    return changed


class _Writer:
    """The other process and the revisions of the variants it writes."""

    def __init__(self, path: Path, document: bytes, count: int, jitter_ms: float) -> None:
        from modelboard.core.fileformat import revision_of_bytes

        self._variants_folder = tempfile.TemporaryDirectory(prefix="modelboard-variants-")
        self.revisions = []
        for index in range(count):
            variant = _variant(document, index)
            Path(self._variants_folder.name, f"{index}.json").write_bytes(variant)
            self.revisions.append(revision_of_bytes(variant))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), self._variants_folder.name, str(count),
             str(jitter_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env())

    def write(self, index: int) -> int:
        """Have the other process write variant ``index``; when it renamed it (ns)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{index}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def write_many(self, count: int) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"loop {count}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "done"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self._variants_folder.cleanup()


class _Arrivals:
    """Monotonic times (ns) at which something was heard, and a way to wait for the next."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self._heard = threading.Condition()

    def note(self) -> None:
        now = time.monotonic_ns()
        with self._heard:
            self.times.append(now)
            self._heard.notify_all()

    def first_after(self, moment: int, timeout: float = 10.0) -> int:
        def found() -> int | None:
            return next((t for t in self.times if t >= moment), None)

        with self._heard:
            if not self._heard.wait_for(lambda: found() is not None, timeout=timeout):
                raise TimeoutError("a write was not heard within 10 s")
            arrival = found()
            assert arrival is not None
            return arrival


@contextlib.contextmanager
def _raw_watchfiles(path: Path, step_ms: int, debounce_ms: int, *,
                    rust_timeout_ms: int = 50) -> Iterator[_Arrivals]:
    """Raw watchfiles on the file's folder, filtered on its name: the baseline.

    Its first yield (a timeout, ``rust_timeout_ms`` after it started) says it is armed.
    """
    import watchfiles

    arrivals = _Arrivals()
    stop = threading.Event()
    armed = threading.Event()
    name = str(path)

    def follow() -> None:
        for _changes in watchfiles.watch(
                path.parent, watch_filter=lambda _change, changed: changed == name,
                step=step_ms, debounce=debounce_ms, rust_timeout=rust_timeout_ms,
                yield_on_timeout=True,
                stop_event=stop, recursive=False, raise_interrupt=False):
            armed.set()
            if _changes:
                arrivals.note()

    thread = threading.Thread(target=follow, name="bench-raw-watch", daemon=True)
    thread.start()
    armed.wait(timeout=10 + rust_timeout_ms / 1e3)
    try:
        yield arrivals
    finally:
        stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def _watching_store(path: Path) -> Iterator[tuple[object, _Arrivals, list[str]]]:
    """A store watching ``path``; its subscriber notes the revision it hears and when."""
    from modelboard.core import open_store

    # Every sample size names a prefix of the same providers: one catalog knows them all.
    store = open_store(path, catalog=any_model_catalog(10_000), read_only=True)
    arrivals = _Arrivals()
    heard: list[str] = []

    def subscriber(event: object) -> None:
        heard.append(event.new.revision)  # type: ignore[attr-defined]
        arrivals.note()

    store.subscribe(subscriber)
    store.start_watching()
    try:
        yield store, arrivals, heard
    finally:
        store.close()


def _propagation(providers: int, samples: int, block: int) -> tuple[list[float], list[float]]:
    """Latencies (ms) of ours and of raw watchfiles, ``samples`` or a few more each, in
    alternating blocks of ``block`` writes."""
    from modelboard.core.filebackend import WATCH_DEBOUNCE_MS, WATCH_STEP_MS

    document = sample_document(providers)
    ours: list[float] = []
    raw: list[float] = []
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(document)
        rounds = -(-samples // block)
        writer = _Writer(path, document, rounds * block * 2, jitter_ms=2 * WATCH_STEP_MS)
        index = 0
        try:
            for _round in range(rounds):
                with _raw_watchfiles(path, WATCH_STEP_MS, WATCH_DEBOUNCE_MS) as arrivals:
                    for _ in range(block):
                        written = writer.write(index)
                        raw.append((arrivals.first_after(written) - written) / 1e6)
                        index += 1
                with _watching_store(path) as (_store, arrivals, heard):
                    for _ in range(block):
                        written = writer.write(index)
                        ours.append((arrivals.first_after(written) - written) / 1e6)
                        assert writer.revisions[index] in heard  # it heard this very write
                        index += 1
        finally:
            writer.close()
    return ours, raw


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _idle_cpu(seconds: float) -> tuple[float, float]:
    """Percent of one core used by an idle watching store, and by raw watchfiles."""
    from modelboard.core.filebackend import WATCH_DEBOUNCE_MS, WATCH_RESCAN_MS, WATCH_STEP_MS

    def measure(start: Callable[[Path], contextlib.AbstractContextManager[object]]) -> float:
        with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
            path = Path(folder) / "model_selections.json"
            path.write_bytes(sample_document(10))
            with start(path):
                before, began = _cpu_seconds(), time.monotonic()
                threading.Event().wait(seconds)  # idle, on purpose: this is what we measure
                return 100 * (_cpu_seconds() - before) / (time.monotonic() - began)

    ours = measure(_watching_store)
    # The same Python wake-ups as ours when idle: once per WATCH_RESCAN_MS.
    raw = measure(lambda path: _raw_watchfiles(path, WATCH_STEP_MS, WATCH_DEBOUNCE_MS,
                                               rust_timeout_ms=WATCH_RESCAN_MS))
    return ours, raw


def _reader_during_reloads(seconds: float) -> tuple[list[float], list[float], int]:
    """Per-call latencies (µs, per batch of calls) of a proxy loop: idle, then while the
    watch thread reloads 10,000 providers over and over; and how many reloads it made."""
    providers = provider_names(10_000)
    document = sample_document(10_000)
    batch = 50

    def read_for(store: object, until: threading.Event) -> list[float]:
        get = store.get_model_selection  # type: ignore[attr-defined]
        names = providers[:batch]
        latencies: list[float] = []
        clock = time.perf_counter_ns
        while not until.is_set():
            start = clock()
            for name in names:
                get(name)
            latencies.append((clock() - start) / batch / 1e3)
        return latencies

    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(document)
        writer = _Writer(path, document, 50, jitter_ms=0)
        try:
            with _watching_store(path) as (store, _arrivals, heard):
                results: queue.Queue[list[float]] = queue.Queue()

                def phase(work: Callable[[], None]) -> list[float]:
                    done = threading.Event()
                    reader = threading.Thread(target=lambda: results.put(read_for(store, done)))
                    reader.start()
                    work()
                    done.set()
                    reader.join(timeout=30)
                    return results.get(timeout=30)

                idle = phase(lambda: threading.Event().wait(seconds))
                before = len(heard)
                deadline = time.monotonic() + seconds

                def keep_writing() -> None:
                    while time.monotonic() < deadline:
                        writer.write_many(10)

                busy = phase(keep_writing)
                reloads = len(heard) - before
        finally:
            writer.close()
    return idle, busy, reloads


# -- the physical floor and the peer a proxy author would write -----------------------------
_IN_MOVED_TO = 0x00000080
_IN_CLOSE_WRITE = 0x00000008


@contextlib.contextmanager
def _raw_inotify(path: Path) -> Iterator[_Arrivals]:
    """The physical floor: a blocking read of inotify events on the folder (via libc).

    What the kernel can do at best: no step, no debounce, no Python reload, only the
    wake-up of a thread blocked in read(2) when the rename lands.
    """
    import ctypes
    import os
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1 failed")
    if libc.inotify_add_watch(fd, str(path.parent).encode(), _IN_MOVED_TO | _IN_CLOSE_WRITE) < 0:
        os.close(fd)
        raise OSError(ctypes.get_errno(), "inotify_add_watch failed")
    arrivals = _Arrivals()
    name = path.name.encode()
    stop_read, stop_write = os.pipe()

    def follow() -> None:
        import select

        while True:
            ready, _, _ = select.select([fd, stop_read], [], [])
            if stop_read in ready:
                return
            data = os.read(fd, 65536)
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                event_name = data[offset + 16:offset + 16 + size].rstrip(b"\0")
                offset += 16 + size
                if mask & _IN_MOVED_TO and event_name == name:
                    arrivals.note()

    thread = threading.Thread(target=follow, name="bench-raw-inotify", daemon=True)
    thread.start()
    try:
        yield arrivals
    finally:
        os.write(stop_write, b"x")
        thread.join(timeout=10)
        for descriptor in (fd, stop_read, stop_write):
            os.close(descriptor)


@contextlib.contextmanager
def _stat_per_request(path: Path) -> Iterator[_Arrivals]:
    """The peer a proxy author would otherwise write: ``stat()`` the file on every request
    and reload (``json.loads``) when it changed. Requests arrive back to back here, so
    what is measured is its best case: the stat of the next request plus the reload."""
    import json
    import os

    arrivals = _Arrivals()
    stop = threading.Event()

    def serve() -> None:
        seen = os.stat(path)
        while not stop.is_set():
            now = os.stat(path)  # one request
            if (now.st_ino, now.st_mtime_ns, now.st_size) != \
                    (seen.st_ino, seen.st_mtime_ns, seen.st_size):
                seen = now
                json.loads(path.read_bytes())
                arrivals.note()
            time.sleep(0)  # let the writer's reporting thread run, as a server's loop would

    thread = threading.Thread(target=serve, name="bench-stat-peer", daemon=True)
    thread.start()
    try:
        yield arrivals
    finally:
        stop.set()
        thread.join(timeout=10)


def _peers(providers: int, samples: int) -> tuple[list[float], list[float]]:
    """Latencies (ms) of the inotify floor and of the stat-per-request peer."""
    document = sample_document(providers)
    floor: list[float] = []
    peer: list[float] = []
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(document)
        writer = _Writer(path, document, samples * 2, jitter_ms=2.0)
        try:
            # Both can hear the rename before the writer has read its clock after it:
            # such a sample counts as 0 (hearing is looked for from before the request).
            for source, into, first in ((_raw_inotify, floor, 0),
                                        (_stat_per_request, peer, samples)):
                with source(path) as arrivals:
                    for index in range(first, first + samples):
                        asked = time.monotonic_ns()
                        written = writer.write(index)
                        heard = arrivals.first_after(asked)
                        into.append(max(0, heard - written) / 1e6)
        finally:
            writer.close()
    return floor, peer


def _stat_request_cost() -> tuple[float, float]:
    """Seconds per request: our read, and the peer's stat plus dict lookup."""
    import os

    from bench.common import time_per_call
    from modelboard.core import open_store

    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(sample_document(1_000))
        store = open_store(path, read_only=True)
        provider = provider_names(1_000)[1]
        models = {provider: "gpt-4o-mini"}
        ours = time_per_call(lambda: store.get_model_selection(provider), number=20_000)
        peer = time_per_call(lambda: (os.stat(path), models.get(provider)), number=20_000)
        store.close()
    return ours, peer


def run(quick: bool) -> list[Figure]:
    from modelboard.core.filebackend import WATCH_STEP_MS

    random.seed(3)
    samples, block = (40, 10) if quick else (150, 15)
    figures: list[Figure] = []
    ours_at: dict[int, list[float]] = {}
    for providers in (10, 1_000):
        ours, raw = _propagation(providers, samples, block)
        ours_at[providers] = ours
        median_ok = median(ours) <= 1.5 * median(raw)
        p95_ours, p95_raw = percentile(ours, 0.95), percentile(raw, 0.95)
        p95_ok = p95_ours <= 1.5 * p95_raw and (providers < 1_000 or p95_ours < 50)
        size = f"{providers:,} provider{'s' if providers > 1 else ''}"
        figures.append(Figure(
            name=f"3 propagation to a subscriber, {size}: median", ours=median(ours),
            baseline=median(raw), unit="ms", target="ratio <= 1.5", passed=median_ok,
            note=f"baseline: raw watchfiles, same folder, step {WATCH_STEP_MS} ms; "
                 f"{samples} writes each from another process"))
        figures.append(Figure(
            name=f"3 propagation to a subscriber, {size}: p95", ours=p95_ours,
            baseline=p95_raw, unit="ms",
            target="ratio <= 1.5" + (", < 50 ms" if providers >= 1_000 else ""),
            passed=p95_ok))

    floor, peer = _peers(1_000, samples)
    figures.append(Figure(
        name="3 propagation, 1,000 providers: median vs the physical floor",
        ours=median(ours_at[1_000]), baseline=median(floor), unit="ms",
        note="baseline: a thread blocked in read(2) on inotify for the folder, woken by "
             f"the rename (no step, no reload; 0 means it woke before the writer could read "
             f"its clock); ours waits for a {WATCH_STEP_MS} ms step, then reloads and "
             "dispatches"))
    figures.append(Figure(
        name="3 propagation, 1,000 providers: median vs stat() per request",
        ours=median(ours_at[1_000]), baseline=median(peer), unit="ms",
        note="baseline: what a proxy author would otherwise write, requests back to back: "
             "stat() the file per request, json.loads it when it changed"))
    ours_request, peer_request = _stat_request_cost()
    figures.append(Figure(
        name="3 cost per request: get_model_selection vs stat() per request",
        ours=ours_request * 1e6, baseline=peer_request * 1e6, unit="µs per request",
        note="baseline: os.stat of the file and a dict lookup, the stat-per-request peer's "
             "price of noticing changes; ours learns of them from the watch thread"))

    ours, raw = _propagation(10_000, samples // 2, block // 2)
    figures.append(Figure(
        name="3 propagation to a subscriber, 10,000 providers: median", ours=median(ours),
        baseline=median(raw), unit="ms",
        note="the difference is the reload in the watch thread: read, parse the changed "
             "entry, build the snapshot, diff, dispatch"))

    ours_cpu, raw_cpu = _idle_cpu(3.0 if quick else 10.0)
    figures.append(Figure(
        name="3 idle CPU of a watching process", ours=ours_cpu, baseline=raw_cpu,
        unit="% of a core", target="< 1 %", passed=ours_cpu < 1.0,
        note=f"baseline: raw watchfiles, same step ({WATCH_STEP_MS} ms) and Python wake-ups; "
             f"over {3 if quick else 10} s"))

    idle, busy, reloads = _reader_during_reloads(1.5 if quick else 5.0)
    switch_us = sys.getswitchinterval() * 1e6
    figures.append(Figure(
        name="3 get_model_selection while the watcher reloads 10,000 providers: median",
        ours=median(busy), baseline=median(idle), unit="µs per call",
        target="ratio <= 1.5", passed=median(busy) <= 1.5 * median(idle),
        note=f"baseline: the same loop, watcher idle; {reloads} reloads during the run"))
    figures.append(Figure(
        name="3 get_model_selection while the watcher reloads 10,000 providers: p99.9",
        ours=percentile(busy, 0.999), baseline=percentile(idle, 0.999), unit="µs per call",
        note="calls take no lock; what a reload can cost one is the interpreter's time slice"))
    figures.append(Figure(
        name="3 get_model_selection while the watcher reloads 10,000 providers: worst",
        ours=max(busy) * 50, baseline=max(idle) * 50, unit="µs (one call, at most)",
        note=f"the slowest batch of 50 calls, all charged to one call: the interpreter's "
             f"switch interval is {switch_us / 1e3:g} ms, and on a shared machine the OS "
             f"deschedules the thread now and then, reload or not"))
    return figures

