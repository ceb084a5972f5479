"""Find the write key of a request: in the body (Segment prefers it) or as Basic auth.

Basic auth carries the key as the username, usually with a trailing colon (`base64("key:")`);
some clients omit the colon. An OAuth `Bearer` token comes with the key in the body.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

# Clients send the same header on every request: decode each distinct one once.
_decoded_headers: dict[bytes, str | None] = {}
_MAX_CACHED_HEADERS = 1024


def key_from_header(authorization: bytes | None) -> str | None:
    if not authorization:
        return None
    try:
        return _decoded_headers[authorization]
    except KeyError:
        pass
    key = _decode_basic(authorization)
    if len(_decoded_headers) >= _MAX_CACHED_HEADERS:
        _decoded_headers.clear()
    _decoded_headers[authorization] = key
    return key


def _decode_basic(authorization: bytes) -> str | None:
    scheme, _, value = authorization.partition(b" ")
    if scheme.lower() != b"basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key = decoded.partition(":")[0]
    return key or None


def key_from_body(body: Any) -> str | None:
    if isinstance(body, dict):
        key = body.get("writeKey")
        if isinstance(key, str) and key:
            return key
    return None
