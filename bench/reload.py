"""Figure 4: a reload of 10,000 providers, beside the floor of reading the data at all.

The floor is ``json.loads`` of the file's bytes (C speed, no validation). Two reloads:

- after another writer changed one provider (the usual case): the store redoes only
  the entry that changed;
- cold, in a fresh store (a proxy starting, or a file rewritten in another layout):
  every entry is parsed, validated and rendered once.

How a request loop in another thread fares while the watcher reloads 10,000 providers
is measured by ``bench/propagation.py`` (the figure 3 rows "get_model_selection while
the watcher reloads"), so it is not repeated here.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import filelock

from bench.common import Figure, median, raw_atomic_write, sample_document

PROVIDERS = 10_000


def _variant(document: bytes, index: int) -> bytes:
    """The document with the first provider's model changed (a different revision)."""
    return document.replace(b'"model_name": "gpt-4o-mini"',
                            f'"model_name": "variant-{index}"'.encode(), 1)


def run(quick: bool) -> list[Figure]:
    from modelboard.core import open_store

    rounds = 5 if quick else 15
    document = sample_document(PROVIDERS)
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(document)
        lock = filelock.FileLock(str(path) + ".lock")
        store = open_store(path, read_only=True)
        warm: list[float] = []
        cold: list[float] = []
        floors: list[float] = []
        for index in range(rounds):
            raw_atomic_write(str(path), _variant(document, index), lock)
            start = time.perf_counter()
            store.reload()
            warm.append(time.perf_counter() - start)
            if store.get_model_selection("provider-00000").model_name != f"variant-{index}":
                raise AssertionError("the reload did not see the change")
            start = time.perf_counter()
            fresh = open_store(path, read_only=True)
            cold.append(time.perf_counter() - start)
            fresh.close()
            start = time.perf_counter()
            json.loads(path.read_bytes())
            floors.append(time.perf_counter() - start)
        store.close()
    floor = median(floors) * 1e3
    return [
        Figure(name="4 reload after one provider changed, 10,000 providers",
               ours=median(warm) * 1e3, baseline=floor, unit="ms (median)",
               note=f"baseline: json.loads of the same file; {rounds} reloads; reads during "
                    "reloads: see the figure 3 rows"),
        Figure(name="4 cold load of 10,000 providers (fresh store)",
               ours=median(cold) * 1e3, baseline=floor, unit="ms (median)",
               note="every entry parsed with its line and column, validated and rendered "
                    "once for the revision"),
    ]
