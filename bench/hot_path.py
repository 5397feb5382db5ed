"""Figure 1: the proxy's read on every request, against a plain dict lookup.

``store.get_model_selection(p).model_name`` on a 1,000-provider store is timed beside
``models.get(p)`` on ``{provider: model}``, in the same loop shape, over the providers
in random order. Both are timed as compiled loops (timeit) so no lambda call inflates
either side; the best of several rounds is kept, rounds alternating between the two.
"""

from __future__ import annotations

import random
import tempfile
import timeit
from pathlib import Path

from bench.common import Figure, any_model_catalog, provider_names, sample_document

PROVIDERS = 1_000
TARGET_RATIO = 3.0


def run(quick: bool) -> list[Figure]:
    from modelboard.core import open_store

    rounds, loops = (5, 50) if quick else (15, 200)
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(sample_document(PROVIDERS))
        store = open_store(path, catalog=any_model_catalog(PROVIDERS), read_only=True)
        models = {provider: selection.model_name
                  for provider, selection in store.get_all_selections().items()}
        order = provider_names(PROVIDERS)
        random.Random(6).shuffle(order)
        namespace = {"store": store, "models": models, "order": order}
        ours_timer = timeit.Timer(
            "for p in order: store.get_model_selection(p).model_name", globals=namespace)
        dict_timer = timeit.Timer("for p in order: models.get(p)", globals=namespace)
        ours = baseline = float("inf")
        for _ in range(rounds):
            ours = min(ours, ours_timer.timeit(loops))
            baseline = min(baseline, dict_timer.timeit(loops))
        store.close()
    per_read = 1e9 / (loops * PROVIDERS)
    ours_ns, baseline_ns = ours * per_read, baseline * per_read
    return [Figure(
        name="1 hot path: get_model_selection(p).model_name, 1,000 providers",
        ours=ours_ns, baseline=baseline_ns, unit="ns/read",
        target=f"ratio <= {TARGET_RATIO:g}", passed=ours_ns <= TARGET_RATIO * baseline_ns,
        note="baseline: dict.get on {provider: model}; best of "
             f"{rounds} rounds of {loops} x {PROVIDERS} reads")]
