"""The switch that turns Sluice's C extensions off.

Every C extension is optional (setup.py): an install without a C compiler does the same work in
Python or DuckDB, slower. `SLUICE_NO_C_EXTENSIONS=1` makes an install that has them behave as
one that has not, so the tests can run both ways.
"""

from __future__ import annotations

import os

DISABLE_ENV = "SLUICE_NO_C_EXTENSIONS"


def disabled() -> bool:
    """Whether `SLUICE_NO_C_EXTENSIONS` asks for the pure-Python paths."""
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")
