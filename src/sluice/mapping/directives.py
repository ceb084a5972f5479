"""What each directive does to values, with JavaScript's rules where Segment's output shows them.

Segment's mapping kit runs on Node, so a number in a template renders as `String(n)` would
(`1`, not `1.0`; `1e+21`; `0.000001`), `@json` encodes as `JSON.stringify`, `@replace` expands
`$&` and `$$` in its replacement like `String.prototype.replace`, and the `blank` test of `@if`
is JavaScript's loose `value != ''`. The compiler in `resolve.py` wires these pure functions
into closures; keeping them here keeps that module about evaluation order only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from sluice.mapping.paths import UNDEFINED, compile_getter, split_path, walk

Render = Callable[[Any], str]

# -- JavaScript values ---------------------------------------------------------------------------


def js_number(number: int | float) -> str:
    """`String(number)` in JavaScript: shortest round-trip digits, laid out as ECMAScript does."""
    if isinstance(number, int):
        if abs(number) < 10**21:
            return str(number)
        try:
            number = float(number)
        except OverflowError:
            return "Infinity" if number > 0 else "-Infinity"
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    if number < 0:
        return "-" + js_number(-number)
    mantissa, _, exponent = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    size = len(digits)
    if size <= point <= 21:
        return digits + "0" * (point - size)
    if 0 < point <= 21:
        return f"{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    power = point - 1
    head = digits[0] + (f".{digits[1:]}" if size > 1 else "")
    return f"{head}e{'+' if power >= 0 else '-'}{abs(power)}"


def js_string(value: Any) -> str:
    """`String(value)` in JavaScript, for the JSON values an event holds."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return js_number(value)
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, list | tuple):
        return ",".join(
            "" if item is None or item is UNDEFINED else js_string(item) for item in value
        )
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness of a literal written in a mapping (objects and arrays are truthy)."""
    if isinstance(value, Mapping | list | tuple):
        return True
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def is_blank(value: Any) -> bool:
    """The negation of Segment's `blank` test, `value != null && value != ''` (loose equality).

    Loose equality makes `0`, `false` and arrays that stringify to `''` (`[]`, `[null]`) blank too.
    """
    if value is None or value is UNDEFINED:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, list | tuple):
        return js_string(value) == ""
    return False


def clone(value: Any) -> Any:
    """A copy of the dicts and lists in `value`, so output never aliases the event."""
    if type(value) is dict:
        return {key: clone(item) for key, item in value.items()}
    if type(value) is list:
        return [clone(item) for item in value]
    return value


# -- @template -----------------------------------------------------------------------------------

_TRIPLE = re.compile(r"\{\{\{([^}]+)\}\}\}")
_DOUBLE = re.compile(r"\{\{([^}]+)\}\}")


def _placeholder(value: Any) -> str:
    return "" if value is None or value is UNDEFINED else js_string(value)


def render_template(template: str, payload: Any) -> str:
    """Fill `{{path}}` and `{{{path}}}` from `payload`; nothing is HTML-escaped any more."""

    def fill(match: re.Match[str]) -> str:
        keys = split_path(match.group(1).strip())
        return _placeholder(UNDEFINED if keys is None else walk(payload, keys))

    # Two passes, like Segment: text put in by `{{{a}}}` is scanned again for `{{b}}`.
    return _DOUBLE.sub(fill, _TRIPLE.sub(fill, template))


def compile_template(template: str) -> Render:
    """`render_template` for a fixed template, split once into text and precompiled paths."""
    if _TRIPLE.search(template):
        return lambda payload: render_template(template, payload)
    parts = _DOUBLE.split(template)
    if len(parts) == 1:
        return lambda payload: template
    texts = parts[0::2]
    first = texts[0]
    pieces = [
        (compile_getter(split_path(path.strip())), text)
        for path, text in zip(parts[1::2], texts[1:], strict=True)
    ]

    def render(payload: Any) -> str:
        out = [first]
        for getter, text in pieces:
            value = getter(payload)
            out.append("" if value is None or value is UNDEFINED else js_string(value))
            out.append(text)
        return "".join(out)

    return render


# -- @replace ------------------------------------------------------------------------------------


def _expand(replacement: str, match: re.Match[str]) -> str:
    """Expand `$$`, `$&`, `` $` `` and `$'` in a replacement, as `String.prototype.replace` does."""
    out: list[str] = []
    index, size = 0, len(replacement)
    while index < size:
        char = replacement[index]
        if char == "$" and index + 1 < size:
            code = replacement[index + 1]
            special = {
                "$": "$",
                "&": match.group(0),
                "`": match.string[: match.start()],
                "'": match.string[match.end() :],
            }.get(code)
            if special is not None:
                out.append(special)
                index += 2
                continue
        out.append(char)
        index += 1
    return "".join(out)


def compile_replace(
    pattern: str, replacement: str, *, ignorecase: bool, global_: bool
) -> Callable[[str], str]:
    """Replace `pattern` as plain text (never a regular expression), first or every occurrence."""
    regex = re.compile(re.escape(pattern), re.IGNORECASE if ignorecase else 0)
    count = 0 if global_ else 1
    if "$" in replacement:
        return lambda text: regex.sub(lambda match: _expand(replacement, match), text, count=count)
    # A function, not the string itself: `re.sub` would read backslashes in it.
    return lambda text: regex.sub(lambda match: replacement, text, count=count)


# -- @flatten, @merge, @json, @excludeWhenNull ---------------------------------------------------


def flatten(value: Any, separator: str, omit_arrays: bool) -> dict[str, Any]:
    """`{"a": {"b": 1}}` to `{"a.b": 1}`; list items are keyed by index unless `omit_arrays`.

    A value that is neither an object nor a list comes back under the empty key, as in Segment.
    """
    out: dict[str, Any] = {}
    _flatten_into(out, value, "", separator, omit_arrays)
    return out


def _flatten_into(
    out: dict[str, Any], value: Any, prefix: str, separator: str, omit_arrays: bool
) -> None:
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list) and not omit_arrays:
        items = ((str(index), item) for index, item in enumerate(value))
    else:
        if value is not UNDEFINED:
            out[prefix] = value
        return
    for key, item in items:
        _flatten_into(
            out, item, f"{prefix}{separator}{key}" if prefix else key, separator, omit_arrays
        )


def merge(objects: list[Any], *, left: bool) -> dict[str, Any]:
    """`Object.assign({}, ...objects)`: shallow, later objects win (earlier ones when `left`)."""
    out: dict[str, Any] = {}
    for item in reversed(objects) if left else objects:
        if isinstance(item, Mapping):
            out.update(item)
        elif isinstance(item, list | str):
            # Object.assign spreads a string or an array by index; it skips other primitives.
            out.update((str(index), element) for index, element in enumerate(item))
    return {key: item for key, item in out.items() if item is not UNDEFINED}


def json_encode(value: Any) -> Any:
    """`JSON.stringify(value)`: compact, non-ASCII kept; undefined stays undefined."""
    if value is UNDEFINED:
        return UNDEFINED
    out: list[str] = []
    _encode_into(out, value)
    return "".join(out)


def _encode_into(out: list[str], value: Any) -> None:
    if isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int | float):
        out.append(js_number(value) if math.isfinite(value) else "null")
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if item is UNDEFINED:
                continue
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode_into(out, item)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode_into(out, None if item is UNDEFINED else item)
        out.append("]")
    else:
        out.append(json.dumps(str(value), ensure_ascii=False))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_decode(value: Any) -> Any:
    """`JSON.parse` for strings; other values, and strings that are not JSON, come back as given."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return value


def drop_nulls(value: Any) -> Any:
    """Remove null fields from an object and from the objects nested in it (lists are kept)."""
    if isinstance(value, Mapping):
        return {key: drop_nulls(item) for key, item in value.items() if item is not None}
    return value
