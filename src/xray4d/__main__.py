"""``python -m xray4d``: the command line (same as the ``xray4d`` script)."""
from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
