"""Make a request body decodable the way Segment's API decodes it, and find items no consumer
could use.

Broken strings (invalid UTF-8, lone surrogate escapes) become U+FFFD before parsing, as Go's
JSON decoder behind Segment's API makes them (`spec/jsontext.py`), so what Sluice stores is
always valid UTF-8 and valid JSON, and one client's broken string never sinks its batch.

Per item, what would stall a consumer later is refused with a reason (that item only): numbers
that do not fit a double (`1e999`), and nesting deeper than `MAX_DEPTH`. The common body pays
for a few C-speed scans (`isascii`, `count`, one regex search); the slow checks run only on
bodies those scans flag.
"""

from __future__ import annotations

import re

import msgspec

from sluice.spec.jsontext import clean_body

__all__ = ["MAX_DEPTH", "clean_body", "depth", "item_fault"]

MAX_DEPTH = 64  # levels of objects/arrays in one event (Segment's own objects nest 3-4 deep)

# A number with a 3-digit exponent or 309+ digits: possibly out of a double's range.
_BIG_NUMBER = re.compile(rb"[0-9](?:[eE][+]?[0-9]{3}|[0-9]{308})")
_decode = msgspec.json.Decoder().decode


def item_fault(raw: bytes | memoryview) -> tuple[str, str] | None:
    """Why an item (as raw JSON) cannot be stored: (reason, detail), or None when it can."""
    data = bytes(raw)
    if data.count(b"{") + data.count(b"[") > MAX_DEPTH and depth(data) > MAX_DEPTH:
        return "too_deep", f"objects and arrays nest deeper than {MAX_DEPTH} levels"
    if _BIG_NUMBER.search(data) is not None:
        try:
            value = _decode(data)
        except msgspec.ValidationError as exc:
            return "number_out_of_range", f"a number does not fit a double: {exc}"
        except (msgspec.DecodeError, RecursionError):
            return None  # not this check's business: parsing reports it
        if _has_huge_int(value):
            return "number_out_of_range", "an integer does not fit a double"
    return None


def depth(data: bytes) -> int:
    """How deep objects and arrays nest in a JSON text (strings skipped), without recursion."""
    deepest = level = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            level += 1
            deepest = max(deepest, level)
        elif byte in (0x7D, 0x5D):  # } ]
            level -= 1
    return deepest


def _has_huge_int(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**1024:
            return True
    return False
