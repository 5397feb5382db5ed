"""The seed's examples, verbatim, in a fresh directory and a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SEED_EXAMPLE = textwrap.dedent("""
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


def test_seed_examples_work_verbatim_on_the_default_file(tmp_path: Path) -> None:
    done = run_python(SEED_EXAMPLE, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gpt-4", "True", "True"]
    stored = json.loads((tmp_path / "config" / "model_selections.json").read_text())
    assert stored["openai"]["model_name"] == "gpt-4"
    assert stored["anthropic"]["model_name"] == "claude-3-sonnet"


def test_selections_persist_into_a_new_process(tmp_path: Path) -> None:
    assert run_python(SEED_EXAMPLE, tmp_path).returncode == 0
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
