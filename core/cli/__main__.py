"""``python -m modelboard.core.cli``: the same as the ``modelboard`` command."""

import sys

from . import main

sys.exit(main())
