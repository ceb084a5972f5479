"""Errors of tracking plans.

Tree:
    SluiceError
    └── PlanError   a tracking plan cannot be used (names the rule and what is wrong)
"""

from __future__ import annotations

from sluice.errors import SluiceError


class PlanError(SluiceError):
    """A problem at `path` inside a plan's `rules` (`events[3].rules.properties...`)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
