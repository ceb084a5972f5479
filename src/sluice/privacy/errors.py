"""Errors of privacy regulations.

Tree:
    SluiceError
    └── PrivacyError
        ├── RegulationInvalid     a request the API refuses (names the field)
        └── RegulationNotFound    no regulation has this id
"""

from __future__ import annotations

from sluice.errors import SluiceError


class PrivacyError(SluiceError):
    """Base of privacy's errors."""


class RegulationInvalid(PrivacyError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class RegulationNotFound(PrivacyError):
    def __init__(self, regulation_id: str) -> None:
        super().__init__(f"No regulation has id {regulation_id!r}")
        self.regulation_id = regulation_id
