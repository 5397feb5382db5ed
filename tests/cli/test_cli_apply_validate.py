"""apply (all or nothing, every problem reported) and validate (FILE:LINE:COL per problem)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import Modelboard, assert_one_line_error, selection


def assert_lines_start(lines: list[str], prefixes: list[str]) -> None:
    """One line per prefix, in order (the rest of each line is the core's wording)."""
    assert len(lines) == len(prefixes), lines
    for line, prefix in zip(lines, prefixes, strict=True):
        assert line.startswith(prefix), (line, prefix)


def test_apply_sets_every_provider_in_one_write(modelboard: Modelboard, tmp_path: Path) -> None:
    modelboard.write({"openai": selection("gpt-4o"), "google": selection("gemini-2.5-pro")})
    wanted = tmp_path / "pinned.json"
    wanted.write_text(json.dumps({"openai": "gpt-4.1", "anthropic": "claude-3-opus",
                                  "google": "gemini-2.5-pro"}))

    outcome = modelboard("apply", str(wanted))

    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == [
        "anthropic: (none) -> claude-3-opus",
        "openai: gpt-4o -> gpt-4.1",
        f"applied 2 changes to {modelboard.file} (1 already as wanted)",
    ]
    stored = modelboard.stored()
    assert {p: e["model_name"] for p, e in stored.items()} == {
        "openai": "gpt-4.1", "anthropic": "claude-3-opus", "google": "gemini-2.5-pro"}
    assert stored["google"]["updated_by"] == "alice@ops"  # untouched entries stay as they were
    history = modelboard.file.with_name("model_selections.history.jsonl").read_text()
    revisions = {json.loads(line)["revision"] for line in history.splitlines()}
    assert len(history.splitlines()) == 2 and len(revisions) == 1  # one write


def test_apply_dry_run_shows_the_plan_and_writes_nothing(modelboard: Modelboard) -> None:
    outcome = modelboard("apply", "-", "--dry-run", stdin='{"openai": "gpt-4o", "xai": "grok-4"}')

    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == [
        "openai: (none) -> gpt-4o",
        "xai: (none) -> grok-4",
        "dry run: 2 changes would be applied; nothing was written",
    ]
    assert not modelboard.file.parent.exists()


def test_apply_reports_every_problem_and_writes_nothing(modelboard: Modelboard,
                                                        tmp_path: Path) -> None:
    modelboard.write({"openai": selection("gpt-4o", editable=False, reason="launch"),
                      "mistral": selection("mistral-large-latest")})
    before = modelboard.folder_state()
    wanted = tmp_path / "wanted.json"
    wanted.write_text('{\n  "anthropic": "claude-3-opus",\n  "openai": "gpt-4.1",\n'
                      '  "mistral": "mistral-huge",\n  "acme": "rocket-1",\n'
                      '  "google": {"editable": true}\n}\n')

    for extra in ([], ["--dry-run"]):
        outcome = modelboard("apply", str(wanted), *extra)

        # As validate reports them: FILE:LINE:COL lines on stdout, the verdict on stderr.
        assert outcome.code == 1
        assert "Traceback" not in outcome.err
        assert_lines_start(outcome.out.splitlines(), [
            f"{wanted}:3:3: openai: selection is locked by alice@ops: launch",
            f"{wanted}:4:3: mistral: model 'mistral-huge' is not served by mistral",
            f"{wanted}:5:3: unknown provider 'acme'",
            f"{wanted}:6:3: google: missing model_name",
        ])
        assert outcome.err_lines == [
            f"modelboard: {wanted}: 4 problems; nothing was written to {modelboard.file}"]
    assert modelboard.folder_state() == before


def test_apply_takes_the_full_file_form_but_changes_models_only(modelboard: Modelboard,
                                                                tmp_path: Path) -> None:
    modelboard.write({"openai": selection("gpt-4o")})
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps({
        "openai": selection("gpt-4o", editable=False, by="someone-else"),
        "anthropic": selection("claude-3-opus", editable=False, by="someone-else"),
    }))

    outcome = modelboard("apply", str(exported))

    assert outcome.code == 0, outcome.err
    stored = modelboard.stored()
    assert stored["anthropic"]["model_name"] == "claude-3-opus"
    assert stored["anthropic"]["editable"] is True  # locks are changed by lock/unlock only
    assert stored["anthropic"]["updated_by"].startswith("tester@")
    assert stored["openai"] == selection("gpt-4o")


def test_apply_refuses_a_file_that_does_not_parse_or_exist(modelboard: Modelboard,
                                                           tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"openai": "gpt-4o",,}')

    bad = modelboard("apply", str(broken))
    missing = modelboard("apply", str(tmp_path / "missing.json"))

    assert_one_line_error(bad, f"{broken}:1:21: expecting a provider name")
    assert_one_line_error(missing, f"{tmp_path / 'missing.json'}: no such file")
    assert not modelboard.file.parent.exists()


def test_validate_passes_a_good_file(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o"), "ollama": "anything:7b"})

    outcome = modelboard("validate")

    assert (outcome.code, outcome.out, outcome.err) == (
        0, f"{modelboard.file}: valid, 2 selections\n", "")


def test_validate_prints_file_line_column_for_every_problem(modelboard: Modelboard,
                                                            tmp_path: Path) -> None:
    checked = tmp_path / "candidate.json"
    checked.write_text(
        '{\n'
        '  "openai": {"model_name": "gpt-4o", "editable": true},\n'
        '  "acme": "rocket-1",\n'
        '  "anthropic": {"model_name": "claude-x"},\n'
        '  "google": {"model_name": "gemini-2.5-pro", "editable": "yes"},\n'
        '  "mistral": {"model_name": 42}\n'
        '}\n')

    outcome = modelboard("validate", str(checked))

    assert outcome.code == 1
    assert_lines_start(outcome.out.splitlines(), [
        f"{checked}:3:3: unknown provider 'acme'",
        f"{checked}:4:3: anthropic: model 'claude-x' is not served by anthropic",
        f"{checked}:5:3: google: editable must be true or false, not a string",
        f"{checked}:6:3: 'mistral': model name must be a string",
    ])
    assert outcome.err == "modelboard: 1 of 1 file is not valid\n"


def test_validate_checks_several_files_with_the_given_catalog(modelboard: Modelboard,
                                                              tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"providers": {"acme": ["rocket-1"]}}')
    good = tmp_path / "good.json"
    good.write_text('{"acme": "rocket-1"}')
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "openai": "gpt-4o"\n  "acme": "rocket-1"\n}')
    missing = tmp_path / "missing.json"

    strict = modelboard("validate", str(good))
    outcome = modelboard("validate", "--catalog", str(catalog), str(good), str(broken),
                         str(missing))

    assert strict.code == 1 and "unknown provider 'acme'" in strict.out
    assert outcome.code == 1
    assert outcome.out.splitlines() == [
        f"{good}: valid, 1 selection",
        f"{broken}:3:3: expecting ',' or '}}' after a selection",
        f"{missing}: no such file",
    ]
    assert outcome.err == "modelboard: 2 of 3 files are not valid\n"

    from_environment = modelboard("validate", str(good), env={"MODELBOARD_CATALOG": str(catalog)})
    assert from_environment.code == 0, from_environment.err


def test_apply_and_validate_report_a_files_problems_alike(modelboard: Modelboard,
                                                         tmp_path: Path) -> None:
    modelboard.write({"openai": selection("gpt-4o")})
    wanted = tmp_path / "wanted.json"
    wanted.write_text('{\n  "mistral": "mistral-huge",\n  "google": {"editable": true},\n'
                      '  "acme": "rocket-1"\n}\n')

    applied = modelboard("apply", str(wanted))
    validated = modelboard("validate", str(wanted))

    # The same lines, on the same stream (stdout), without a prefix, in the file's order;
    # each command's verdict is its one line on stderr.
    assert (applied.code, validated.code) == (1, 1)
    lines = validated.out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{wanted}:2:3", f"{wanted}:3:3", f"{wanted}:4:3"]
    assert applied.out.splitlines() == lines
    assert len(applied.err_lines) == len(validated.err_lines) == 1
    assert applied.err.startswith("modelboard: ") and validated.err.startswith("modelboard: ")
