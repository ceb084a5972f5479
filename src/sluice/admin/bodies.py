"""Request bodies: JSON decoded into Structs, with errors that name the field.

msgspec reports `Expected int, got str - at $.ids[0]`; the API answers 422 with
`field: "ids[0]"` and the message without the location, like the workspace's errors.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from sluice.admin.errors import ApiError, Invalid

T = TypeVar("T")

_LOCATED = re.compile(r"(?P<message>.*?)(?: - at `\$(?P<at>.*)`)?\Z", re.DOTALL)


def decode_json(body: bytes) -> Any:
    """Any JSON value; an empty or malformed body is a 400."""
    if not body.strip():
        raise ApiError("The request needs a JSON body", code="invalid_json")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(f"The body is not valid JSON: {exc}", code="invalid_json") from None


def convert(data: Any, type_: type[T]) -> T:
    """`data` as `type_`; a value of the wrong shape is a 422 naming the field."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        match = _LOCATED.fullmatch(str(exc))
        assert match is not None  # the pattern matches any text
        field = (match["at"] or "").removeprefix(".")
        message = match["message"].replace("`", "")
        raise Invalid(f"{field}: {message}" if field else message, field=field) from None
