"""What a proxy serves for each case: valid, hand typo, catalog drift, bad file, missing file.

Each case asserts ``get_model_selection``, ``model_for``, ``status()`` and the log, on a real
file edited by hand the way an operator would (a plain write, then a reload).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from modelboard.core import Catalog, EntryProblem, open_store
from modelboard.core.serving import derive_served

LOGGER = "modelboard"


def hand_edit(path: Path, **models: str) -> None:
    """Change model names in the file as an operator in an editor would (no history line)."""
    document = json.loads(path.read_text())
    for provider, model in models.items():
        entry = document.get(provider)
        if isinstance(entry, dict):
            entry["model_name"] = model
        else:
            document[provider] = model
    path.write_text(json.dumps(document, indent=2) + "\n")


def records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and text in r.getMessage()]


def test_a_valid_entry_is_served_and_status_is_clean(
        data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    store.reload()
    assert store.get_model_selection("openai").model_name == "gpt-4o"
    assert store.model_for("openai", "gpt-4o-mini") == "gpt-4o"
    assert store.model_for("anthropic", "claude-3-haiku") == "claude-3-haiku"   # the default
    status = store.status()
    assert json.loads(json.dumps(status)) == status                  # JSON-able as it is
    assert status["backend"] == "file" and status["location"] == str(data_file)
    assert status["revision"] == store.snapshot.revision
    assert status["load_error"] is None and status["problems"] == [] and status["warnings"] == []
    assert status["loaded_at"] is not None and status["watching"] is False
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


def test_a_hand_typo_never_replaces_the_last_valid_value(
        data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    hand_edit(data_file, openai="gpt-4oo")
    store.reload()
    assert store.stored_snapshot["openai"].model_name == "gpt-4oo"   # the editor shows it
    assert store.get_model_selection("openai").model_name == "gpt-4o"  # the proxy does not
    assert store.model_for("openai", "gpt-4o-mini") == "gpt-4o"
    (problem,) = store.problems()
    assert isinstance(problem, EntryProblem)
    assert (problem.provider, problem.kind) == ("openai", "rejected")
    assert problem.stored.model_name == "gpt-4oo" and problem.served.model_name == "gpt-4o"
    assert "did you mean 'gpt-4o'" in problem.reason
    assert store.warnings() == [problem.reason]
    assert store.status()["problems"] == [{"provider": "openai", "stored": "gpt-4oo",
                                           "served": "gpt-4o", "reason": problem.reason,
                                           "kind": "rejected"}]
    warned = records(caplog, logging.WARNING, "gpt-4oo")
    assert len(warned) == 1 and "still serving gpt-4o" in warned[0].getMessage()
    assert warned[0].name.startswith("modelboard.core.")

    store.reload()                                      # the same problem again: not re-logged
    hand_edit(data_file, anthropic="claude-3-haiku")    # another provider changes meanwhile
    store.reload()
    assert len(records(caplog, logging.WARNING, "gpt-4oo")) == 1

    hand_edit(data_file, openai="gpt-4o-mini")          # the operator fixes the typo
    store.reload()
    assert store.model_for("openai", "x") == "gpt-4o-mini" and store.problems() == ()
    cleared = records(caplog, logging.INFO, "valid again")
    assert len(cleared) == 1 and "openai" in cleared[0].getMessage()


def test_a_typo_with_no_valid_value_in_this_process_serves_nothing(
        data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    data_file.parent.mkdir(parents=True)
    data_file.write_text(json.dumps({"openai": "gpt-4oo", "anthropic": "claude-3-haiku",
                                     "acme": "rocket-1"}))
    store = open_store(data_file)
    assert store.get_model_selection("openai") is None
    assert store.model_for("openai", "gpt-4o-mini") == "gpt-4o-mini"
    assert store.model_for("anthropic", "x") == "claude-3-haiku"
    assert store.model_for("acme", "fallback") == "fallback"
    assert "openai" not in store.snapshot and "openai" in store.stored_snapshot
    problems = {problem.provider: problem for problem in store.problems()}
    assert set(problems) == {"openai", "acme"}
    assert all(p.served is None and p.kind == "rejected" for p in problems.values())
    assert [p["served"] for p in store.status()["problems"]] == [None, None]
    assert len(records(caplog, logging.WARNING, "nothing is served for openai")) == 1
    # Each WARNING names the provider, the stored value and why, also for an unknown provider.
    (unknown,) = records(caplog, logging.WARNING, "nothing is served for acme")
    assert "unknown provider 'acme'" in unknown.getMessage()
    assert "'rocket-1'" in unknown.getMessage()


def test_catalog_drift_keeps_a_value_modelboard_wrote_and_warns(
        data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    old = Catalog.from_mapping({"openai": ["gpt-4o", "gpt-4-legacy"]})
    new = Catalog.from_mapping({"openai": ["gpt-4o"]})
    writer = open_store(data_file, catalog=old)
    writer.set_model_selection("openai", "gpt-4-legacy")   # validated when written

    # A proxy restarted with the newer catalog: the history shows modelboard set it.
    proxy = open_store(data_file, catalog=new)
    assert proxy.get_model_selection("openai").model_name == "gpt-4-legacy"
    assert proxy.model_for("openai", "gpt-4o") == "gpt-4-legacy"
    (problem,) = proxy.problems()
    assert problem.kind == "drift" and problem.served == problem.stored
    assert proxy.status()["problems"] == [{"provider": "openai", "stored": "gpt-4-legacy",
                                           "served": "gpt-4-legacy", "reason": problem.reason,
                                           "kind": "drift"}]
    assert proxy.status()["warnings"] == [problem.reason]
    assert proxy.status()["load_error"] is None
    drifted = records(caplog, logging.WARNING, "catalog drift")
    assert len(drifted) == 1 and "'gpt-4-legacy'" in drifted[0].getMessage()

    # A hand edit back to the same unknown value after a valid one is not vouched for.
    writer.set_model_selection("openai", "gpt-4o")
    proxy.reload()
    assert proxy.problems() == ()
    data_file.write_text(json.dumps({"openai": "gpt-4-legacy"}))   # by hand, legacy form
    fresh = open_store(data_file, catalog=new)
    assert fresh.model_for("openai", "none") == "none"
    assert fresh.problems()[0].kind == "rejected"


def test_a_catalog_swapped_in_process_keeps_what_is_served(data_file: Path) -> None:
    store = open_store(data_file, catalog=Catalog.from_mapping({"openai": ["a", "b"]}))
    store.set_model_selection("openai", "a")
    store.catalog = Catalog.from_mapping({"openai": ["b"]})
    assert store.model_for("openai", "b") == "a"
    assert [p.kind for p in store.problems()] == ["drift"]
    store.catalog = Catalog.from_mapping({"openai": ["a", "b"]})
    assert store.problems() == ()


def test_a_bad_file_keeps_serving_the_last_good_state(
        data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    data_file.write_text('{"openai": {"model_name": "gpt-4o-mini",')   # mid-edit
    store._refresh()                                    # what the watcher does on a change
    store._refresh()
    assert store.get_model_selection("openai").model_name == "gpt-4o"
    assert store.model_for("openai", "x") == "gpt-4o"
    status = store.status()
    assert status["load_error"] is not None and str(data_file) in status["load_error"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    data_file.write_text(json.dumps({"openai": "gpt-4o-mini"}))
    store._refresh()
    assert store.model_for("openai", "x") == "gpt-4o-mini" and store.status()["load_error"] is None
    assert len(records(caplog, logging.INFO, "loaded again")) == 1


def test_a_missing_file_keeps_serving_the_last_good_state(
        data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    kept = data_file.read_text()
    data_file.unlink()
    store._refresh()
    store._refresh()                                    # still missing: not logged again
    assert store.get_model_selection("openai").model_name == "gpt-4o"
    assert store.model_for("openai", "x") == "gpt-4o"
    assert "missing" in store.status()["load_error"]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "missing" in warned[0].getMessage()
    assert str(data_file) in warned[0].getMessage()
    data_file.write_text(kept)                          # put back
    store._refresh()
    assert store.status()["load_error"] is None
    assert len(records(caplog, logging.INFO, "loaded again")) == 1


def test_a_missing_file_at_start_serves_defaults(data_file: Path) -> None:
    store = open_store(data_file)
    assert store.get_model_selection("openai") is None
    assert store.model_for("openai", "gpt-4o-mini") == "gpt-4o-mini"
    assert store.status()["load_error"] is None and store.status()["providers"] == 0


def test_writes_build_on_the_stored_state_not_the_served_one(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    hand_edit(data_file, openai="gpt-4oo")
    store.reload()
    store.set_model_selection("anthropic", "claude-3-haiku")        # no conflict on openai
    assert json.loads(data_file.read_text())["openai"]["model_name"] == "gpt-4oo"
    store.set_model_selection("openai", "gpt-4o-mini")              # fixing it is a write too
    assert store.model_for("openai", "x") == "gpt-4o-mini" and store.problems() == ()


def test_the_rule_unchanged_entries_skip_validation_but_keep_their_problem() -> None:
    from modelboard.core import Selection

    catalog = Catalog.from_mapping({"openai": ["gpt-4o"]})
    good, typo = Selection("gpt-4o"), Selection("gpt-4oo")
    served, problems = derive_served({"openai": good}, catalog=catalog, served_before={})
    assert served == {"openai": good} and problems == ()
    served, problems = derive_served({"openai": typo}, catalog=catalog, served_before=served)
    assert served == {"openai": good} and problems[0].kind == "rejected"
    again, problems_again = derive_served(
        {"openai": typo}, catalog=catalog, served_before=served,
        stored_before={"openai": typo}, problems_before={"openai": problems[0]})
    assert again == served and problems_again == problems


UNCONFIGURED = r'''
import json, sys, time
from pathlib import Path
from modelboard.core import open_store

if sys.argv[2] == "configured":
    import logging
    logging.basicConfig()
path = Path(sys.argv[1])
path.write_text(json.dumps({"openai": "gpt-4o", "acme": "rocket-1"}))
store = open_store(path, watch=True)
path.write_text('{"openai": {"model_name": ')            # a bad file, met by the watcher
deadline = time.monotonic() + 20
while store.load_error is None and time.monotonic() < deadline:
    time.sleep(0.02)
print(json.dumps({"load_error": None if store.load_error is None else str(store.load_error),
                  "problems": [problem.describe() for problem in store.problems()],
                  "served": store.model_for("openai", "default")}))
store.close()
'''


@pytest.mark.parametrize("logging_setup", ["unconfigured", "configured"])
def test_without_logging_configured_nothing_reaches_stderr(
        data_file: Path, logging_setup: str) -> None:
    """A proxy that never configured logging gets no bare lines on stderr (the package
    logger has a NullHandler); the store itself still says what is wrong. With logging
    configured, the same run does print its WARNINGs: they are made, and only routed."""
    data_file.parent.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", UNCONFIGURED, str(data_file), logging_setup],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["load_error"] is not None and str(data_file) in seen["load_error"]
    assert seen["served"] == "gpt-4o"                              # the last good state
    assert len(seen["problems"]) == 1 and "'rocket-1'" in seen["problems"][0]
    if logging_setup == "unconfigured":
        assert done.stderr == ""
    else:
        assert "WARNING:modelboard.core.store:" in done.stderr
        assert "'rocket-1'" in done.stderr and seen["load_error"] in done.stderr
