"""``python -m modelboard``: the same as the ``modelboard`` command.

This folder is the top-level ``modelboard`` package (a namespace package: no
``__init__``), mapped in pyproject.toml; ``core/`` and ``tui/`` are its two halves.
"""

from __future__ import annotations

import sys

from modelboard.core.cli import main

if __name__ == "__main__":
    sys.exit(main())
