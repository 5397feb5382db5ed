"""The command as installed: console script, headless imports, usage errors, help,
the editor's entry and migrate."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import Modelboard, Outcome, assert_one_line_error, selection

from modelboard.core import __version__
from modelboard.core.cli import COMMANDS, build_parser


def test_the_installed_console_script_runs_commands(modelboard: Modelboard) -> None:
    script = Path(sys.executable).parent / "modelboard"
    assert script.exists(), "pip install -e . declares the modelboard console script"
    modelboard.write({"openai": selection("gpt-4o")})

    version = modelboard("--version", prefix=[str(script)])
    got = modelboard("get", "openai", prefix=[str(script)])
    refused = modelboard("get", "anthropic", prefix=[str(script)])

    assert (version.code, version.out) == (0, f"modelboard {__version__}\n")
    assert (got.code, got.out, got.err) == (0, "gpt-4o\n", "")
    assert_one_line_error(refused, "anthropic: no model selected")


def test_headless_commands_import_neither_textual_nor_rich(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o")})

    outcome = modelboard("get", "openai", prefix=[sys.executable, "-X", "importtime", "-m",
                                                  "modelboard.core.cli"])

    assert outcome.code == 0 and outcome.out == "gpt-4o\n"
    modules = {match.group(1)
               for match in re.finditer(r"^import time:.*\|\s+(\S+)$", outcome.err, re.M)}
    imported = {module.split(".")[0] for module in modules}
    assert "modelboard" in imported  # the report is really there
    assert not imported & {"textual", "rich", "jsonschema", "referencing"}, sorted(imported)
    # Nor what only one other command needs (the notifier: httpx, signing, date parsing).
    assert not modules & {"modelboard.core.notify", "httpx", "email.utils"}, sorted(modules)


# Runs the command as ``python -m modelboard.core.cli`` does, then names every module loaded
# (-X importtime would miss the handler, which is imported with importlib).
_LIST_MODULES = ("import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
                 "'\\nmodules: ' + ' '.join(sorted(sys.modules)) + '\\n')); "
                 "runpy.run_module('modelboard.core.cli', run_name='__main__', alter_sys=True)")


def _imported_by(modelboard: Modelboard, *args: str) -> tuple[Outcome, set[str]]:
    """Run ``modelboard ARGS`` in a fresh interpreter; its outcome and every module it loaded."""
    outcome = modelboard(*args, prefix=[sys.executable, "-c", _LIST_MODULES])
    found = re.search(r"^modules: (.*)$", outcome.err, re.M)
    assert found is not None, outcome.err
    modules = set(found.group(1).split())
    assert "modelboard.core.cli.reading" in modules  # the report is really there
    return outcome, modules


# What a read needs is the store, the file backend and the catalog; the other commands'
# modules, the revision machinery and logging (nothing is logged when all is well) are not.
_NOT_FOR_A_READ = {
    "logging", "textwrap", "modelboard.core.versions", "modelboard.core.migrate",
    "modelboard.core.notify", "modelboard.core.redisbackend",
    *(f"modelboard.core.cli.{name}" for name in (
        "writing", "files", "watch", "fleet", "versions", "notify", "completion", "launch",
        "recovery", "problems")),
}


@pytest.mark.parametrize("args", [("get", "openai"), ("get", "openai", "--json"),
                                  ("get", "anthropic")], ids=["text", "json", "refused"])
def test_get_imports_only_what_a_read_needs(modelboard: Modelboard, args: tuple[str, ...]) -> None:
    modelboard.write({"openai": selection("gpt-4o")})

    outcome, modules = _imported_by(modelboard, *args)

    if args[1] == "anthropic":
        assert outcome.code == 1 and "anthropic: no model selected" in outcome.err
    else:
        assert outcome.code == 0 and "gpt-4o" in outcome.out
    assert not modules & _NOT_FOR_A_READ, sorted(modules & _NOT_FOR_A_READ)


def test_a_core_warning_in_a_fresh_process_is_one_line_on_stderr(modelboard: Modelboard) -> None:
    # logging is imported only when the core first logs; the run's handler must be there then.
    assert modelboard("set", "openai", "gpt-4o").code == 0
    assert modelboard("set", "openai", "gpt-4.1").code == 0
    history = modelboard.file.with_name("model_selections.history.jsonl")
    history.write_bytes(b"not json\n" + history.read_bytes())
    warning = f"modelboard: {history}: skipping an unreadable history line: b'not json'"

    shown, quiet = modelboard("history"), modelboard("-q", "history")
    _, modules = _imported_by(modelboard, "get", "openai")

    assert shown.code == 0 and shown.err_lines == [warning]
    assert "gpt-4o -> gpt-4.1" in shown.out
    assert quiet.code == 0 and quiet.err == "" and "gpt-4o -> gpt-4.1" in quiet.out
    assert "logging" not in modules  # the same file read by get: nothing logged, no logging


def test_usage_errors_exit_2_with_one_line(modelboard: Modelboard) -> None:
    cases = {
        ("frobnicate",): "modelboard: argument COMMAND: invalid choice: 'frobnicate'",
        ("get",): "modelboard get: the following arguments are required: provider",
        ("set", "openai"): "modelboard set: the following arguments are required: model",
        ("history", "--limit", "0"): "modelboard history: argument --limit: 0 is not a positive",
        ("list", "--colour"): "modelboard: unrecognized arguments: --colour",
        ("migrate", "--from", "a.json"): "the following arguments are required: --to",
    }
    for args, expected in cases.items():
        outcome = modelboard(*args)
        assert_one_line_error(outcome, expected, "--help')", code=2)
        assert outcome.out == ""


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["--help"])
    assert done.value.code == 0
    overview = capsys.readouterr().out
    for name in filter(None, COMMANDS):
        assert re.search(rf"^\s+{name}\s+\S", overview, re.M), name
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0
        page = capsys.readouterr().out
        assert page.startswith(f"usage: modelboard {name}") and "--file" in page, page


# Runs the command with a stand-in editor that reports how it was called.
FAKE_EDITOR = textwrap.dedent("""
    import json, sys, types
    editor = types.ModuleType("modelboard.tui")
    def run_editor(location, *, catalog=None, read_only=False, actor=None, preferences=None):
        print(json.dumps({"location": location, "catalog": catalog, "read_only": read_only}))
        return 3
    editor.run_editor = run_editor
    sys.modules["modelboard.tui"] = editor
    from modelboard.core.cli import main
    sys.exit(main(sys.argv[1:]))
""")

WITHOUT_TEXTUAL = textwrap.dedent("""
    import sys
    sys.modules["textual"] = None  # what an install without the tui extra looks like
    sys.modules["rich"] = None
    from modelboard.core.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_no_command_or_tui_opens_the_editor_on_the_chosen_file(modelboard: Modelboard,
                                                                tmp_path: Path) -> None:
    fake = [sys.executable, "-c", FAKE_EDITOR]

    plain = modelboard(prefix=fake)
    options = modelboard("tui", "--read-only", "--file", "other.json", "--catalog", "cat.toml",
                         prefix=fake)

    assert plain.code == 3, plain.err
    assert json.loads(plain.out) == {"location": str(modelboard.file), "catalog": None,
                                     "read_only": False}
    assert options.code == 3, options.err
    assert json.loads(options.out) == {"location": "other.json", "catalog": "cat.toml",
                                       "read_only": True}


def test_the_editor_without_textual_says_how_to_install_it(modelboard: Modelboard) -> None:
    for args in ((), ("tui",)):
        outcome = modelboard(*args, prefix=[sys.executable, "-c", WITHOUT_TEXTUAL])

        assert_one_line_error(outcome, "the editor needs Textual",
                              "pip install 'modelboard[tui]'", code=2)


def test_migrate_copies_into_an_empty_store_and_refuses_otherwise(modelboard: Modelboard,
                                                                   tmp_path: Path) -> None:
    modelboard.write({"openai": selection("gpt-4o"), "xai": selection("grok-4")})
    copy = tmp_path / "copy" / "model_selections.json"

    copied = modelboard("migrate", "--from", str(modelboard.file), "--to", str(copy))
    again = modelboard("migrate", "--from", str(modelboard.file), "--to", str(copy))

    assert copied.code == 0, copied.err
    assert copied.out.startswith("copied 2 selections") and copied.out.count("\n") == 1
    assert json.loads(copy.read_text()) == modelboard.stored()
    assert again.code == 1 and "Traceback" not in again.err and len(again.err_lines) == 1
    assert json.loads(copy.read_text()) == modelboard.stored()


def test_migrate_missing_from_this_version_is_one_line(modelboard: Modelboard) -> None:
    without = textwrap.dedent("""
        import sys
        sys.modules["modelboard.core.migrate"] = None
        from modelboard.core.cli import main
        sys.exit(main(sys.argv[1:]))
    """)

    outcome = modelboard("migrate", "--from", "a.json", "--to", "redis://localhost/0",
                         prefix=[sys.executable, "-c", without])

    assert_one_line_error(outcome, "migrate is not available in this version")
