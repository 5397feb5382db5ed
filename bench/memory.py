"""Figure 7: memory held by a 10,000-provider store, against the same data as plain dicts.

Each side is measured in a fresh interpreter with tracemalloc started after the
imports, so only what loading the data allocated (and still holds) is counted. The
baseline is ``json.loads`` of the same file: every entry as a dict of its fields.
A second row measures a store after it wrote once, with whatever a writer keeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Figure, any_model_catalog, sample_document, subprocess_env

PROVIDERS = 10_000
TARGET_RATIO = 2.0

_MEASURE = """
import gc, json, sys, tracemalloc
path, what = sys.argv[1], sys.argv[2]
from modelboard.core import open_store
from bench.common import any_model_catalog
catalog = any_model_catalog({count}) if what == "written" else None
gc.collect()
tracemalloc.start()
if what == "dicts":
    held = json.loads(open(path, "rb").read())
else:
    held = open_store(path, catalog=catalog, read_only=(what == "read"))
    if what == "written":
        held.set_model_selection("provider-00001", "another-model")
gc.collect()
print(json.dumps(tracemalloc.get_traced_memory()[0]))
"""


def _held_bytes(path: Path, what: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE.format(count=PROVIDERS), str(path), what],
        capture_output=True, text=True, timeout=120, env=subprocess_env(), check=True)
    return int(json.loads(done.stdout))


def run(quick: bool) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(sample_document(PROVIDERS))
        any_model_catalog(PROVIDERS)  # fail here, not in the child, if it cannot be built
        dicts = _held_bytes(path, "dicts")
        read = _held_bytes(path, "read")
        written = _held_bytes(path, "written")
    megabyte = 1024 * 1024
    return [
        Figure(name="7 memory: store of 10,000 providers (reading)",
               ours=read / megabyte, baseline=dicts / megabyte, unit="MiB",
               target=f"ratio <= {TARGET_RATIO:g}", passed=read <= TARGET_RATIO * dicts,
               note="tracemalloc in fresh interpreters; baseline: json.loads of the file"),
        Figure(name="7 memory: the same store after one write",
               ours=written / megabyte, baseline=dicts / megabyte, unit="MiB",
               target=f"ratio <= {TARGET_RATIO:g}", passed=written <= TARGET_RATIO * dicts,
               note="includes what a writer keeps between writes"),
    ]
