"""Figure 4: loading the selections file, beside what reading the same data costs at least.

- A reload after another writer changed one provider (the usual case, 10,000
  providers), beside ``json.loads`` of the file: the store redoes only the entry that
  changed.
- A cold load in a fresh store (a proxy starting, or a file rewritten in another
  layout), at 10,000 and 100,000 providers, beside the honest floor of the same work:
  ``orjson.loads`` of the bytes, building the same ``Selection`` objects from it, and the
  SHA-256 the revision needs. Every entry is parsed, validated and rendered once.

How a request loop in another thread fares while the watcher reloads 10,000 providers
is measured by ``bench/propagation.py`` (the figure 3 rows "get_model_selection while
the watcher reloads"), so it is not repeated here.
"""

from __future__ import annotations

import gc
import hashlib
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, any_model_catalog, median, raw_atomic_write, sample_document

WARM_PROVIDERS = 10_000
#: Provider counts of the cold load, each with its target ratio to the floor.
COLD_TARGETS = {10_000: 1.5, 100_000: 1.5}


def _variant(document: bytes, index: int) -> bytes:
    """The document with the first provider's model changed (a different revision)."""
    return document.replace(b'"model_name": "gpt-4o-mini"',
                            f'"model_name": "variant-{index}"'.encode(), 1)


def _library_floor(data: bytes) -> dict[str, Any]:
    """orjson.loads, the same Selections built from it, and SHA-256 of the bytes."""
    import orjson

    from modelboard.core import Selection

    selections = {}
    for provider, entry in orjson.loads(data).items():
        stamp = entry.get("last_updated")
        selections[provider] = Selection(
            model_name=entry["model_name"], editable=entry.get("editable", True),
            last_updated=datetime.fromisoformat(stamp) if stamp else None,
            updated_by=entry.get("updated_by"), lock_reason=entry.get("lock_reason"))
    hashlib.sha256(data).digest()
    return selections


def _warm(rounds: int) -> Figure:
    from modelboard.core import open_store

    document = sample_document(WARM_PROVIDERS)
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(document)
        store = open_store(path, catalog=any_model_catalog(WARM_PROVIDERS), read_only=True)
        warm: list[float] = []
        floors: list[float] = []
        for index in range(rounds):
            raw_atomic_write(str(path), _variant(document, index), history=None)
            start = time.perf_counter()
            store.reload()
            warm.append(time.perf_counter() - start)
            if store.get_model_selection("provider-00000").model_name != f"variant-{index}":
                raise AssertionError("the reload did not see the change")
            start = time.perf_counter()
            json.loads(path.read_bytes())
            floors.append(time.perf_counter() - start)
        store.close()
    return Figure(name=f"4 reload after one provider changed, {WARM_PROVIDERS:,} providers",
                  ours=median(warm) * 1e3, baseline=median(floors) * 1e3, unit="ms (median)",
                  note=f"baseline: json.loads of the same file; {rounds} reloads; reads "
                       "during reloads: see the figure 3 rows")


def _cold(count: int, rounds: int, target: float | None, *, written_by_us: bool) -> Figure:
    from modelboard.core import open_store

    document = sample_document(count)
    catalog = any_model_catalog(count)  # the sample providers are all served
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(document)
        if written_by_us:  # as a proxy finds it: the last write was modelboard's own
            writer = open_store(path, catalog=catalog, actor="bench@host")
            writer.set_model_selection("provider-00001", "gpt-4o")
            writer.close()
        else:  # reformatted by hand: same content, other bytes, never written by us
            path.write_bytes(document.replace(b'": {\n', b'":  {\n'))
        document = path.read_bytes()
        cold: list[float] = []
        floors: list[float] = []
        for _ in range(rounds):  # alternating, so both see the same machine
            # Each side starts from a collected heap: a closed store is freed by the
            # cyclic collector, whose next full pass would otherwise fall in whichever
            # side's timing came next (at 100,000 providers, a tenth of a second).
            gc.collect()
            start = time.perf_counter()
            fresh = open_store(path, catalog=catalog, read_only=True)
            cold.append(time.perf_counter() - start)
            if len(fresh.snapshot) != count:
                raise AssertionError("the cold load did not load every provider")
            fresh.close()
            del fresh
            gc.collect()
            start = time.perf_counter()
            _library_floor(path.read_bytes())
            floors.append(time.perf_counter() - start)
    ours, floor = median(cold) * 1e3, median(floors) * 1e3
    how = "as modelboard wrote it" if written_by_us else "reformatted by hand"
    return Figure(name=f"4 cold load of {count:,} providers, {how}",
                  ours=ours, baseline=floor, unit="ms (median)",
                  target=f"ratio <= {target:g}" if target is not None else "-",
                  passed=ours <= target * floor if target is not None else None,
                  note=f"{len(document) / 1e6:.1f} MB; baseline: orjson.loads + the same "
                       "Selections + SHA-256; ours also validates every entry and checks it "
                       "against the catalog" + (
                           "" if written_by_us else ", and renders the document once for "
                           "its revision (the hash of the canonical form)"))


def run(quick: bool) -> list[Figure]:
    figures = [_warm(5 if quick else 15)]
    for count, target in COLD_TARGETS.items():
        rounds = (2 if quick else 5) if count >= 100_000 else (5 if quick else 15)
        figures.append(_cold(count, rounds, target, written_by_us=True))
    figures.append(_cold(10_000, 5 if quick else 15, None, written_by_us=False))
    return figures
