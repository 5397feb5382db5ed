"""How ``apply`` and ``validate`` report what is wrong in a file: one way, for both.

Text: one ``FILE:LINE:COL: message`` line per problem on stdout, no prefix (editors and CI
problem matchers read that form), in the file's order; the command's one-line verdict
then goes to stderr like every refusal. JSON: the same problems as objects in the
command's document (see ``Problem.to_json``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ModelboardError
from ..text import escape
from .session import Session
from .shapes import Problem

__all__ = ["Problem", "in_order", "report_problems"]


def in_order(errors: Iterable[ModelboardError], *, file: str) -> list[Problem]:
    """``errors`` as problems of ``file``, sorted by where they are in it."""
    problems = [Problem.from_error(error, file=file) for error in errors]
    problems.sort(key=lambda problem: (problem.line or 0, problem.column or 0))
    return problems


def report_problems(session: Session, problems: Iterable[Problem]) -> list[dict[str, Any]]:
    """Print ``problems`` in text (nothing under ``--json``); return their JSON objects."""
    found = list(problems)
    if not session.as_json:
        for problem in found:
            session.terminal.line(escape(str(problem)))
        session.terminal.flush()  # before the verdict on stderr
    return [problem.to_json() for problem in found]
