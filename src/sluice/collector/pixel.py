"""The tracking pixel: `GET /v1/pixel/<call>?data=<url-safe base64 JSON>` or dotted query params.

Emails and ad tags cannot POST, so the whole message travels in the query string: either base64
JSON (URL-safe alphabet, padding optional) or one parameter per field with dots for nesting,
e.g. `properties.subject=Welcome`. The endpoint always answers a GIF, whatever happens.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl

import msgspec


def decode_pixel_query(query_string: bytes) -> dict[str, Any] | None:
    """The message a pixel request carries, or None when there is none to be read."""
    params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    data = next((v for k, v in params if k == "data"), None)
    if data is not None:
        return _decode_data(data)
    message: dict[str, Any] = {}
    for key, value in params:
        _set_dotted(message, key.split("."), value)
    return message or None


def _decode_data(data: str) -> dict[str, Any] | None:
    text = data.strip().replace(" ", "+")  # a '+' that was not percent-encoded arrives as a space
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
        value = msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    return value if isinstance(value, dict) else None


def _set_dotted(target: dict[str, Any], path: list[str], value: str) -> None:
    for part in path[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[path[-1]] = value
