"""FQL errors: an expression that cannot be compiled says what is wrong and where.

Filters and triggers are typed by people, so the error reads like a compiler's: the message, the
zero-based character offset into the expression, and (via `pointer()`) a caret under the spot.
Evaluation never raises: a compiled predicate answers False when an event does not fit.

Tree:
    SluiceError
    └── FqlError      the expression is not valid FQL, or not in the trigger subset
"""

from __future__ import annotations

from sluice.errors import SluiceError

_EXCERPT = 60  # characters of the expression quoted in the one-line message


class FqlError(SluiceError):
    """`expression` is invalid at `position` (a character offset; len(expression) means the end)."""

    def __init__(self, message: str, expression: str, position: int) -> None:
        self.message = message
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.expression
        if len(text) > _EXCERPT:
            start = max(0, min(self.position - _EXCERPT // 2, len(text) - _EXCERPT))
            end = start + _EXCERPT
            text = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
        return f"{self.message} at position {self.position} in {text!r}"

    def pointer(self) -> str:
        """The expression with a caret under the offending character, on two lines."""
        return f"{self.expression}\n{' ' * self.position}^"
