"""``-q``/``-v`` set what the command's own handler shows, and nothing of a program's logging:
``main()`` called from a proxy or a script leaves every logger as it found it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelboard.core.cli import main
from modelboard.core.cli.session import cli_logging, quiet_log

core_log = logging.getLogger("modelboard.core.history")


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def library_user() -> Iterator[Kept]:
    """A program's own logging: a root handler at INFO, as a proxy would configure it."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    kept = Kept()
    root.addHandler(kept)
    root.setLevel(logging.INFO)
    yield kept
    root.removeHandler(kept)
    root.setLevel(saved[0])


def _state() -> tuple[object, ...]:
    root, ours = logging.getLogger(), logging.getLogger("modelboard")
    return (root.level, tuple(root.handlers), ours.level, ours.propagate, tuple(ours.handlers))


@pytest.mark.parametrize("flag", ["-q", "-v", "-vv", None])
def test_main_leaves_the_programs_logging_as_it_found_it(library_user: Kept, data_file: Path,
                                                         flag: str | None) -> None:
    before = _state()
    assert main([*([flag] if flag else []), "--file", str(data_file), "set", "openai",
                 "gpt-4o"]) == 0
    assert _state() == before
    core_log.warning("after the command")  # still reaches the program's own handler
    assert library_user.messages[-1] == "after the command"


def test_the_levels_are_the_cli_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    for options, shown in (({}, {"warn"}), ({"quiet": 1}, set()),
                           ({"verbose": 1}, {"warn", "info"}),
                           ({"verbose": 2}, {"warn", "info", "debug"})):
        with cli_logging(**options):
            core_log.warning("warn")
            core_log.info("info")
            core_log.debug("debug")
        lines = capsys.readouterr().err.splitlines()
        assert {line.removeprefix("modelboard: ") for line in lines} == shown, options


def test_quiet_log_filters_the_cli_handler_not_the_logger(library_user: Kept,
                                                          capsys: pytest.CaptureFixture[str],
                                                          ) -> None:
    ours = logging.getLogger("modelboard")
    direct = Kept()
    ours.addHandler(direct)  # a program's handler on modelboard's logger itself
    try:
        with cli_logging():
            level = ours.level
            with quiet_log(logging.CRITICAL):
                assert ours.level == level  # no logger's level moves
                core_log.warning("while a command reports it itself")
            core_log.warning("afterwards")
    finally:
        ours.removeHandler(direct)
    assert direct.messages == ["while a command reports it itself", "afterwards"]
    assert capsys.readouterr().err == "modelboard: afterwards\n"
