"""Glob patterns for FQL's `match()`, with Segment's rules rather than a filesystem's.

Segment matches with its Go `glob` package: like `path.Match` but `*` also crosses `/`. The
pattern must match the whole string, case-sensitively: `*` is any run of characters (even
none), `?` one character, `[abc]` / `[a-z]` / `[^a-z]` one character of (or not of) a class, and
`\\x` the character `x` itself. A pattern is translated once into an anchored regular
expression, so matching costs one `re` call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final

_CACHE_SIZE: Final = 512


class GlobError(ValueError):
    """A malformed pattern (unclosed class, trailing backslash...), at offset `position`."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A function telling whether a string matches `pattern`; raises GlobError if malformed."""
    regex = _compile(pattern)

    def matches(text: str) -> bool:
        return regex(text) is not None

    return matches


def glob_match(text: str, pattern: str) -> bool:
    """Whether `text` matches `pattern`; a malformed pattern matches nothing."""
    try:
        regex = _compile(pattern)
    except GlobError:
        return False
    return regex(text) is not None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(pattern: str) -> Callable[[str], re.Match[str] | None]:
    return re.compile(translate(pattern), re.DOTALL).fullmatch


def translate(pattern: str) -> str:
    """The regular expression (for `fullmatch`) equivalent to `pattern`."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append(".*")
            continue
        if c == "?":
            out.append(".")
        elif c == "\\":
            if i + 1 >= n:
                raise GlobError("pattern ends with an unfinished '\\' escape", i)
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            regex, i = _char_class(pattern, i)
            out.append(regex)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _char_class(pattern: str, start: int) -> tuple[str, int]:
    """Translate the class opening at `start`; returns its regex and the index after `]`."""
    i, n = start + 1, len(pattern)
    negated = i < n and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    while True:
        if i >= n:
            raise GlobError("character class is not closed with ']'", start)
        if pattern[i] == "]" and ranges:
            i += 1
            break
        lo, i = _class_char(pattern, i, start)
        hi = lo
        if i < n and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1, start)
        ranges.append((lo, hi))
    # A reversed range (`[z-a]`) matches nothing, as in Go; `re` would refuse it.
    parts = [
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
        for lo, hi in ranges
        if lo <= hi
    ]
    if not parts:
        return ("." if negated else "(?!)"), i
    return f"[{'^' if negated else ''}{''.join(parts)}]", i


def _class_char(pattern: str, i: int, start: int) -> tuple[str, int]:
    n = len(pattern)
    if i >= n:
        raise GlobError("character class is not closed with ']'", start)
    c = pattern[i]
    if c in "-]":
        raise GlobError(f"unescaped {c!r} in a character class (write '\\{c}')", i)
    if c == "\\":
        i += 1
        if i >= n:
            raise GlobError("pattern ends with an unfinished '\\' escape", i - 1)
        c = pattern[i]
    return c, i + 1
