"""JSON text as Segment's API reads it: broken strings become U+FFFD, never an error.

Segment's API is written in Go, whose JSON decoder turns invalid UTF-8 and lone UTF-16
surrogate escapes (`"\\ud83c"`: what JavaScript writes for a string cut mid-emoji) into U+FFFD
instead of refusing the input. The collector cleans every body this way before parsing
(`clean_body`); readers of events stored before it did (or by other tools) use
`lenient_decode`, which never raises.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

REPLACEMENT_ESCAPE = b"\\ufffd"
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
# An escape, scanned left to right so that `\\` (an escaped backslash) is consumed whole: a
# surrogate pair, a lone surrogate, or anything else escaped.
_ESCAPE = re.compile(
    rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[dD][89a-fA-F][0-9a-fA-F]{2}|.)",
    re.DOTALL,
)
_decode = msgspec.json.Decoder().decode


def clean_body(body: bytes) -> bytes:
    """`body` with invalid UTF-8 and lone surrogate escapes replaced by U+FFFD."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            body = body.decode("utf-8", "replace").encode("utf-8")
    if _SURROGATE_HINT.search(body) is not None:
        body = _ESCAPE.sub(_lone_to_replacement, body)
    return body


def _lone_to_replacement(match: re.Match[bytes]) -> bytes:
    text = match.group(0)
    if len(text) == 6 and text[1:3] in (b"ud", b"uD"):
        return REPLACEMENT_ESCAPE  # a surrogate escape on its own (pairs are 12 bytes)
    return text


def lenient_decode(payload: bytes) -> Any:
    """Decode stored JSON whatever it holds: broken strings as U+FFFD, numbers past a double's
    range as null (as `msgspec.json.encode` writes infinities); something that still cannot be
    read becomes `{"_unreadable": why}`."""
    try:
        return _decode(payload)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        pass
    try:
        text = clean_body(payload).decode("utf-8")
        return json.loads(text, parse_float=_finite_or_none, parse_int=_int_or_none)
    except (ValueError, RecursionError) as exc:
        return {"_unreadable": f"{type(exc).__name__}: {exc}"[:300]}


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _int_or_none(text: str) -> int | None:
    value = int(text)
    return value if abs(value) < 2**1024 else None
