"""The root of every error Sluice raises on purpose.

Tree:
    SluiceError
    ├── config.ConfigError            a setting cannot be used
    ├── store.errors.StoreError       the store cannot do what was asked
    └── workspace.errors.WorkspaceError   a workspace file is invalid (names file, path, field)
"""

from __future__ import annotations


class SluiceError(Exception):
    """Base class for Sluice's own errors."""
