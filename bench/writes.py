"""Figure 2: one ``set_model_selection`` against the physical floor of a safe write.

The floor is a raw locked atomic write of the same bytes (``flock``, the store's own lock
primitive; temp file, write, fsync, ``os.replace``, folder fsync; a history line appended
and fsynced) to a file beside ours. Writes alternate between
the two so both see the same disk and the same neighbours; medians are compared.
Each of our writes changes a different provider to a new model, so every one really
writes (and appends its history line).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import (
    Figure,
    any_model_catalog,
    median,
    percentile,
    raw_atomic_write,
    sample_document,
    writable_providers,
)

#: Provider counts, each with its target ratio to the raw write of the same bytes.
TARGETS = {10: 1.5, 1_000: 1.5, 10_000: 2.0, 100_000: 2.0}


def _measure(count: int, writes: int) -> tuple[list[float], list[float]]:
    from modelboard.core import open_store

    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(sample_document(count))
        raw_path = os.path.join(folder, "raw.json")
        store = open_store(path, catalog=any_model_catalog(count), actor="bench@host")
        providers = writable_providers(count)
        ours: list[float] = []
        raw: list[float] = []
        warmup = 3
        for index in range(warmup + writes):
            provider = providers[index % len(providers)]
            start = time.perf_counter()
            store.set_model_selection(provider, f"bench-model-{index}")
            elapsed = time.perf_counter() - start
            data = path.read_bytes()
            raw_start = time.perf_counter()
            raw_atomic_write(raw_path, data)
            raw_elapsed = time.perf_counter() - raw_start
            if index >= warmup:
                ours.append(elapsed)
                raw.append(raw_elapsed)
        store.close()
    return ours, raw


def run(quick: bool) -> list[Figure]:
    figures = []
    for count, target in TARGETS.items():
        if count >= 100_000:
            writes = 5 if quick else 15
        elif count >= 10_000:
            writes = 10 if quick else 30
        else:
            writes = 30 if quick else 120
        ours, raw = _measure(count, writes)
        ours_ms, raw_ms = median(ours) * 1e3, median(raw) * 1e3
        figures.append(Figure(
            name=f"2 write: set_model_selection, {count:,} providers",
            ours=ours_ms, baseline=raw_ms, unit="ms (median)",
            target=f"ratio <= {target:g}", passed=ours_ms <= target * raw_ms,
            note=f"p95 {percentile(ours, 0.95) * 1e3:.2f} ms vs {percentile(raw, 0.95) * 1e3:.2f}"
                 f" ms; {writes} writes; baseline: flock, temp+fsync+replace+folder fsync, "
                 "history line+fsync"))
    return figures
