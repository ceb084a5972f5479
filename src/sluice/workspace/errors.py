"""Errors raised while reading, checking or applying a workspace file.

A workspace file is written by hand, so every error says where the problem is: the file, the
path inside the document (`sources[1].write_keys`) and what is wrong, the way a compiler would.

Tree:
    SluiceError
    └── WorkspaceError   a workspace document is invalid, or cannot be applied to the store
"""

from __future__ import annotations

from sluice.errors import SluiceError


class WorkspaceError(SluiceError):
    """A problem at `path` (empty for the whole document) of `file` (None when not from a file)."""

    def __init__(self, message: str, *, path: str = "", file: str | None = None) -> None:
        self.message = message
        self.path = path
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [part for part in (self.file, self.path) if part]
        return ": ".join([*parts, self.message])

    def in_file(self, file: str | None) -> WorkspaceError:
        """The same error, attributed to `file`."""
        return WorkspaceError(self.message, path=self.path, file=file)
