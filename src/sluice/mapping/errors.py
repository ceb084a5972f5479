"""Errors raised while checking or evaluating a field mapping.

A mapping is written by hand (in a workspace file, or in the UI), so an error says where the
problem is, as a dotted path inside the mapping (`properties.name.@path`, `items[0].@if.then`),
and what is wrong, the way a compiler would.

Tree:
    SluiceError
    └── MappingError   a mapping is invalid (raised by `validate` and `compile`), or a dynamic
                       argument resolved to the wrong type while evaluating one (for example a
                       `@path` whose path comes from another directive and is not a string)
"""

from __future__ import annotations

from sluice.errors import SluiceError


class MappingError(SluiceError):
    """A problem at `path` (empty for the whole mapping) of a mapping."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.message = message
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message
