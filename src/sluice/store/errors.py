"""Store errors.

Tree:
    SluiceError
    └── StoreError               the store cannot do what was asked
        └── StoreUnavailable     the database cannot be opened or reached
"""

from __future__ import annotations

from sluice.errors import SluiceError


class StoreError(SluiceError):
    """The store cannot do what was asked."""


class StoreUnavailable(StoreError):
    """The database cannot be opened or reached."""
