"""Turn an FQL expression into tokens, each with the offset it starts at.

A separate pass keeps the parser about grammar only, and gives every error an exact position.
Field paths are lexed whole (`context.library.version`, `properties.product\\ 1.price`): one
token holding the unescaped segments, so the parser never sees dots or backslashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sluice.fql.errors import FqlError

# Token kinds.
PATH: Final = "path"
STRING: Final = "string"
NUMBER: Final = "number"
KEYWORD: Final = "keyword"  # and, or, in, true, false, null
OP: Final = "op"  # = != < <= > >=
NOT: Final = "!"
LPAREN: Final = "("
RPAREN: Final = ")"
LBRACK: Final = "["
RBRACK: Final = "]"
COMMA: Final = ","
EOF: Final = "end of expression"

KEYWORDS: Final = frozenset({"and", "or", "in", "true", "false", "null"})
_PUNCTUATION: Final = {"(": LPAREN, ")": RPAREN, "[": LBRACK, "]": RBRACK, ",": COMMA}
_DIGITS: Final = frozenset("0123456789")
_WORD: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_WORD_START: Final = _WORD - _DIGITS - {"-"}


@dataclass(frozen=True, slots=True)
class Token:
    """One token. `value` is the segments tuple for PATH, the parsed literal for STRING/NUMBER,
    the word for KEYWORD and the operator text for OP. `escaped` marks a path written with a
    backslash, which is never a keyword or a function name."""

    kind: str
    value: Any
    pos: int
    escaped: bool = False

    def describe(self) -> str:
        if self.kind == EOF:
            return EOF
        if self.kind == PATH:
            return f"field {'.'.join(self.value)!r}"
        if self.kind == STRING:
            return f"string {self.value!r}"
        return repr(str(self.value))


def tokenize(expr: str) -> list[Token]:
    """The tokens of `expr`, ending with an EOF token; raises FqlError on a bad character."""
    tokens: list[Token] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[c], c, i))
            i += 1
        elif c == "!":
            if expr.startswith("!=", i):
                tokens.append(Token(OP, "!=", i))
                i += 2
            else:
                tokens.append(Token(NOT, "!", i))
                i += 1
        elif c in "<>":
            op = expr[i : i + 2] if expr.startswith("=", i + 1) else c
            tokens.append(Token(OP, op, i))
            i += len(op)
        elif c == "=":
            if expr.startswith("==", i):
                raise FqlError("unexpected '==' (FQL equality is a single '=')", expr, i)
            tokens.append(Token(OP, "=", i))
            i += 1
        elif c in "'\"":
            i = _string(expr, i, tokens)
        elif c in _DIGITS or (c in "+-" and i + 1 < n and expr[i + 1] in _DIGITS):
            i = _number(expr, i, tokens)
        elif c in _WORD_START or c == "\\":
            i = _path(expr, i, tokens)
        else:
            raise FqlError(f"unexpected character {c!r}", expr, i)
    tokens.append(Token(EOF, None, n))
    return tokens


def _string(expr: str, start: int, out: list[Token]) -> int:
    # `\` escapes only the quote and itself; any other `\x` stays as written, so glob patterns
    # keep their escapes: match(s, 'ab\*d') passes `ab\*d` to the glob, as Segment's docs show.
    quote = expr[start]
    chars: list[str] = []
    i, n = start + 1, len(expr)
    while i < n:
        c = expr[i]
        if c == quote:
            out.append(Token(STRING, "".join(chars), start))
            return i + 1
        if c == "\\" and i + 1 < n and expr[i + 1] in (quote, "\\"):
            chars.append(expr[i + 1])
            i += 2
        else:
            chars.append(c)
            i += 1
    raise FqlError("unterminated string", expr, start)


def _number(expr: str, start: int, out: list[Token]) -> int:
    i, n = start + 1, len(expr)
    while i < n and expr[i] in _DIGITS:
        i += 1
    is_float = False
    if i < n and expr[i] == ".":
        if i + 1 >= n or expr[i + 1] not in _DIGITS:
            raise FqlError("expected a digit after the decimal point", expr, i + 1)
        is_float = True
        i += 1
        while i < n and expr[i] in _DIGITS:
            i += 1
    if i < n and expr[i] in "eE":
        j = i + 1
        if j < n and expr[j] in "+-":
            j += 1
        if j >= n or expr[j] not in _DIGITS:
            raise FqlError("expected digits in the exponent", expr, j)
        is_float = True
        i = j
        while i < n and expr[i] in _DIGITS:
            i += 1
    if i < n and (expr[i] in _WORD or expr[i] in ".\\"):
        raise FqlError(f"unexpected {expr[i]!r} after a number", expr, i)
    text = expr[start:i]
    out.append(Token(NUMBER, float(text) if is_float else int(text), start))
    return i


def _path(expr: str, start: int, out: list[Token]) -> int:
    segments: list[str] = []
    escaped = False
    i, n = start, len(expr)
    while True:
        chars: list[str] = []
        while i < n:
            c = expr[i]
            if c == "\\":
                if i + 1 >= n:
                    raise FqlError("expected a character after '\\'", expr, i + 1)
                chars.append(expr[i + 1])
                escaped = True
                i += 2
            elif c in _WORD:
                chars.append(c)
                i += 1
            else:
                break
        if not chars:
            raise FqlError("expected a field name after '.'", expr, i)
        segments.append("".join(chars))
        if i < n and expr[i] == ".":
            i += 1
            continue
        break
    if not escaped and len(segments) == 1 and segments[0] in KEYWORDS:
        out.append(Token(KEYWORD, segments[0], start))
    else:
        out.append(Token(PATH, tuple(segments), start, escaped))
    return i
