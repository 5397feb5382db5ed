"""Figure 4: a reload of 10,000 providers, and what a request loop feels meanwhile.

The reload is timed after another writer replaced the file (so it really re-reads),
beside the floor of reading the same data at all: ``json.loads`` of the file's bytes.
Then a thread serving "requests" (``get_model_selection(p).model_name`` in batches)
runs once alone and once while the main thread reloads back to back; we compare its
worst stall between batches and its throughput. Reads take no lock, so the only thing
a reload can cost them is the interpreter's time slice (``sys.getswitchinterval()``).
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import filelock

from bench.common import Figure, median, provider_names, raw_atomic_write, sample_document

PROVIDERS = 10_000
BATCH = 100


def _variant(document: bytes, index: int) -> bytes:
    """The document with the first provider's model changed (a different revision)."""
    return document.replace(b'"model_name": "gpt-4o-mini"',
                            f'"model_name": "variant-{index}"'.encode(), 1)


class _RequestLoop(threading.Thread):
    """Reads selections in batches until stopped, recording when each batch ended."""

    def __init__(self, store: object, providers: list[str]) -> None:
        super().__init__(daemon=True, name="bench-requests")
        self.store = store
        self.providers = providers
        self.stop = threading.Event()
        self.started_reading = threading.Event()
        self.batch_ends: list[float] = []

    def run(self) -> None:
        get = self.store.get_model_selection  # type: ignore[attr-defined]
        providers = self.providers
        ends = self.batch_ends
        position = 0
        self.started_reading.set()
        model = ""
        while not self.stop.is_set():
            for provider in providers[position:position + BATCH]:
                model = get(provider).model_name  # what a request does with the answer
            position = (position + BATCH) % len(providers)
            ends.append(time.perf_counter())
        self.last_model = model


def _observe(store: object, providers: list[str], seconds: float,
             work: object = None) -> tuple[float, float]:
    """(worst gap between batches in s, reads per second) while ``work()`` runs in a loop."""
    loop = _RequestLoop(store, providers)
    loop.start()
    loop.started_reading.wait(timeout=10)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if callable(work):
            work()
        else:
            loop.stop.wait(0.01)
    loop.stop.set()
    loop.join(timeout=10)
    ends = loop.batch_ends
    gaps = [later - earlier for earlier, later in itertools.pairwise(ends)]
    span = ends[-1] - ends[0] if len(ends) > 1 else seconds
    return max(gaps, default=seconds), (len(ends) - 1) * BATCH / span


def run(quick: bool) -> list[Figure]:
    from modelboard.core import open_store

    rounds = 5 if quick else 15
    window = 1.0 if quick else 3.0
    document = sample_document(PROVIDERS)
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(document)
        lock = filelock.FileLock(str(path) + ".lock")
        store = open_store(path, read_only=True)
        reloads: list[float] = []
        floors: list[float] = []
        for index in range(rounds):
            raw_atomic_write(str(path), _variant(document, index), lock)
            start = time.perf_counter()
            store.reload()
            reloads.append(time.perf_counter() - start)
            assert store.get_model_selection("provider-00000").model_name == f"variant-{index}"
            start = time.perf_counter()
            json.loads(path.read_bytes())
            floors.append(time.perf_counter() - start)

        counter = iter(range(rounds, 10**9))

        def change_and_reload() -> None:
            raw_atomic_write(str(path), _variant(document, next(counter)), lock)
            store.reload()

        providers = provider_names(PROVIDERS)
        idle_stall, idle_rate = _observe(store, providers, window)
        busy_stall, busy_rate = _observe(store, providers, window, change_and_reload)
        store.close()
    switch_ms = sys.getswitchinterval() * 1e3
    return [
        Figure(name="4 reload after an external change, 10,000 providers",
               ours=median(reloads) * 1e3, baseline=median(floors) * 1e3, unit="ms (median)",
               note=f"baseline: json.loads of the same file; {rounds} reloads"),
        Figure(name="4 request loop during reloads: worst stall",
               ours=busy_stall * 1e3, baseline=idle_stall * 1e3, unit="ms",
               note=f"baseline: the same loop with no reload; GIL switch interval "
                    f"{switch_ms:g} ms; reads take no lock"),
        Figure(name="4 request loop during reloads: throughput",
               ours=busy_rate / 1e6, baseline=idle_rate / 1e6, unit="M reads/s",
               note="reloads run back to back in another thread for the whole window "
                    "(they share the interpreter lock)"),
    ]
