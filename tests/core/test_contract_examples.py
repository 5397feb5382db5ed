"""The in-proxy API's examples and the store's contract, verbatim, in a fresh directory
and a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

IN_PROXY_EXAMPLE = textwrap.dedent("""
    from modelboard.core import model_config_manager, model_config_service
    model_config_manager.set_model_selection("openai", "gpt-4")
    print(model_config_manager.get_model_selection("openai").model_name)      # gpt-4
    all_selections = model_config_manager.get_all_selections()
    result = model_config_service.set_model_selection("openai", "gpt-4")
    print(result["success"])                                                  # True
    results = model_config_service.bulk_set_model_selections({"openai": "gpt-4", "anthropic": "claude-3-sonnet"})
    print(results["success"])
""")


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def test_in_proxy_examples_work_verbatim_on_the_default_file(tmp_path: Path) -> None:
    done = run_python(IN_PROXY_EXAMPLE, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gpt-4", "True", "True"]
    stored = json.loads((tmp_path / "config" / "model_selections.json").read_text())
    assert stored["openai"]["model_name"] == "gpt-4"
    assert stored["anthropic"]["model_name"] == "claude-3-sonnet"


def test_selections_persist_into_a_new_process(tmp_path: Path) -> None:
    assert run_python(IN_PROXY_EXAMPLE, tmp_path).returncode == 0
    done = run_python(
        "from modelboard.core import open_store\n"
        "s = open_store()\n"
        "print(s.get_model_selection('anthropic').model_name, s.get_model_selection('openai').editable)",
        tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["claude-3-sonnet", "True"]


def test_service_reports_failure_without_raising(tmp_path: Path) -> None:
    done = run_python(
        "from modelboard.core import model_config_service\n"
        "r = model_config_service.set_model_selection('openai', 'gpt-4-tubro')\n"
        "print(r['success']); print(r['error'])",
        tmp_path)
    assert done.returncode == 0, done.stderr
    success, error = done.stdout.splitlines()
    assert success == "False"
    assert "gpt-4-tubro" in error and "gpt-4-turbo" in error
    assert not (tmp_path / "config" / "model_selections.json").exists()


def test_importing_the_core_loads_neither_textual_nor_rich(tmp_path: Path) -> None:
    done = run_python(
        "import sys, modelboard.core\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))",
        tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# The contract block, verbatim.
CONTRACT_EXAMPLE = textwrap.dedent("""
    from modelboard.core import open_store, Selection, Catalog
    from modelboard.core.errors import (ModelboardError, ValidationError,
        ConfigurationError, LockedError, ConflictError)

    store = open_store("config/model_selections.json")   # path optional: --file / MODELBOARD_FILE / config/model_selections.json
    store.set_model_selection("openai", "gpt-4o", actor="alice")   # -> Selection
    store.get_model_selection("openai")                # -> Selection | None (.model_name, .editable, .last_updated, .updated_by)
    store.get_all_selections()                         # -> read-only Mapping[str, Selection]
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"})  # all or nothing
    with store.transaction() as tx:                    # several changes, one atomic write; an exception rolls all back
        tx.set_model_selection("openai", "gpt-4o-mini")
        tx.lock("anthropic")
    store.lock("openai", reason="incident 42")         # editable=False; set on a locked provider raises LockedError
    store.unlock("openai")
    store.remove_model_selection("mistral")
    store.reload()                                     # re-read now; a bad file raises, last good state stays
    store.snapshot.revision                            # changes exactly when the content changes
    store.history("openai")                            # newest first: time, actor, old, new

    import json
    print(json.dumps({
        "openai": [store.get_model_selection("openai").model_name,
                   store.get_model_selection("openai").editable],
        "anthropic": [store.get_model_selection("anthropic").model_name,
                      store.get_model_selection("anthropic").editable],
        "mistral": store.get_model_selection("mistral"),
        "history": [(h.action, h.actor.split("@")[0], h.old, h.new)
                    for h in store.history("openai")],
        "mapping_is_read_only": not hasattr(store.get_all_selections(), "__setitem__"),
    }))
""")


def test_the_contract_example_runs(tmp_path: Path) -> None:
    done = run_python(CONTRACT_EXAMPLE, tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["openai"] == ["gpt-4o-mini", True]
    assert result["anthropic"] == ["claude-sonnet-4-5", False]
    assert result["mistral"] is None
    assert result["mapping_is_read_only"] is True
    assert result["history"] == [
        ["unlock", "tester", "gpt-4o-mini", "gpt-4o-mini"],
        ["lock", "tester", "gpt-4o-mini", "gpt-4o-mini"],
        ["set", "tester", "gpt-4o", "gpt-4o-mini"],
        ["set", "alice", None, "gpt-4o"],
    ]


def test_the_ready_made_objects_open_lazily_and_follow_modelboard_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "selections.json"
    done = subprocess.run(
        [sys.executable, "-c",
         "import os\n"
         "from modelboard.core import model_config_manager\n"
         "print(os.path.exists('config'))\n"
         "model_config_manager.set_model_selection('openai', 'gpt-4')\n"
         "print(os.path.exists('config'))\n"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "MODELBOARD_FILE": str(elsewhere)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]   # nothing at import, nothing in ./config
    assert json.loads(elsewhere.read_text())["openai"]["model_name"] == "gpt-4"
