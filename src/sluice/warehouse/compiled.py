"""The loaders' C extensions, where this install has them.

setup.py builds `_scan` (the compiled JSON reader), `_pgcopy` (the binary COPY encoder),
`_group` (the columnar planners' grouping of events, for the lake and the warehouses) and
`sluice.lake._distinct` (the lake's count of distinct texts) when a C compiler and Python's
headers are there, and installs Sluice without them when not: a missing compiler must not stop
`uv run sluice serve` on a slim container. Without them the loader reads every event with
DuckDB's JSON functions (readers.ListReader), encodes COPY rows in Python (postgres.py), groups
events in Python (intake.py) and the lake counts distinct texts with pyarrow (lake/parquet.py):
the same rows, slower (docs/warehouse.md "Without a C compiler").
`SLUICE_NO_C_EXTENSIONS=1` makes an install that has them behave as one that has not (the tests
load both ways with it).
"""

from __future__ import annotations

import logging
from types import ModuleType

from sluice.native import DISABLE_ENV as DISABLE_ENV  # the tests set it through here
from sluice.native import disabled

try:
    from sluice.warehouse import _scan  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without a C compiler
    _scan = None
try:
    from sluice.warehouse import _pgcopy  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without a C compiler
    _pgcopy = None
try:
    from sluice.warehouse import _group  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without a C compiler
    _group = None
try:
    from sluice.lake import _distinct  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without a C compiler
    _distinct = None

log = logging.getLogger(__name__)
_warned: set[str] = set()


def _module(name: str, module: ModuleType | None) -> ModuleType | None:
    if disabled():
        return None
    if module is None and name not in _warned:
        _warned.add(name)
        log.warning(
            "sluice.warehouse.%s is not built (no C compiler when Sluice was installed):"
            " the warehouse loads without it, about 1.5x slower; install gcc and Python's"
            " headers, then `uv sync --reinstall-package sluice`",
            name,
        )
    return module


def scan() -> ModuleType | None:
    """The compiled JSON reader (`_scan.c`), or None: DuckDB reads every event."""
    return _module("_scan", _scan)


def pgcopy() -> ModuleType | None:
    """The binary COPY encoder (`_pgcopy.c`), or None: rows are encoded in Python."""
    return _module("_pgcopy", _pgcopy)


def group() -> ModuleType | None:
    """The planners' grouping of events (`_group.c`), or None: Python groups them."""
    return _module("_group", _group)


def distinct() -> ModuleType | None:
    """The lake's count of distinct texts (`lake/_distinct.c`), or None: pyarrow counts."""
    return _module("_distinct", _distinct)


def release_memory() -> int:
    """Free the memory the compiled reader kept for reuse (`_pool.c`: freed output buffers,
    reused by the next chunk's, so that a load's chunks are not each read into fresh pages);
    returns how many bytes. The loader calls it after each load."""
    return _scan.release() if _scan is not None else 0
