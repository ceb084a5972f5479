"""Read a request body within a size limit, inflating gzip, and parse it as JSON.

Browsers send JSON as `text/plain` to avoid a CORS preflight, so the content type is never
checked. Limits apply to the inflated size too, so a small gzip bomb cannot exhaust memory.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

from sluice.collector.responses import Receive

_decoder = msgspec.json.Decoder()


class BatchEnvelope(msgspec.Struct):
    """A batch request: items stay raw JSON until each is decoded on its own."""

    batch: list[msgspec.Raw]
    sentAt: Any = None
    context: Any = None
    integrations: Any = None
    writeKey: Any = None


# Items are decoded one level deep: top-level fields become `Raw` values, so properties and
# traits pass through to storage without being turned into Python objects and back.
_item_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_batch_decoder = msgspec.json.Decoder(BatchEnvelope)


class BodyError(Exception):
    """The body cannot be used; carries the HTTP status and the JSON error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyError(400, "client_disconnected", "the client went away mid-request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyError(400, "request_too_large", f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body as JSON text: inflated (gzip or deflate, by the header or, when a client forgot
    it, by gzip's magic bytes), without a UTF-8 byte order mark."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if not body.startswith(GZIP_MAGIC):
            return body[3:] if body.startswith(UTF8_BOM) else body
        encoding = "gzip"  # sniffed
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BodyError(400, "unsupported_encoding", f"Content-Encoding {encoding!r} unsupported")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, auto-detected
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, "invalid_gzip", f"body is not valid {encoding}: {exc}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise BodyError(400, "request_too_large", f"inflated body exceeds {limit} bytes")
    if not inflater.eof:
        raise BodyError(400, "invalid_gzip", f"the {encoding} body is cut short (truncated)")
    return data[3:] if data.startswith(UTF8_BOM) else data


TOO_DEEP = BodyError(400, "too_deep", "the body nests objects or arrays too deep to parse")


def parse_batch(body: bytes) -> BatchEnvelope:
    try:
        return _batch_decoder.decode(body)
    except RecursionError:
        raise TOO_DEEP from None
    except msgspec.ValidationError as exc:
        # Invalid JSON and non-object bodies are reported as such, not as a bad batch.
        if not isinstance(parse_json(body), dict):
            raise BodyError(400, "invalid_request", "the body must be a JSON object") from exc
        raise BodyError(400, "invalid_batch", f"not a batch: {exc}") from exc
    except msgspec.DecodeError:
        parse_json(body)  # raises the invalid_json error with its message
        raise


def parse_message(body: bytes) -> dict[str, Any]:
    try:
        return _item_decoder.decode(body)
    except RecursionError:
        raise TOO_DEEP from None
    except msgspec.ValidationError as exc:
        parse_json(body)
        raise BodyError(400, "invalid_request", "the body must be a JSON object") from exc
    except msgspec.DecodeError:
        parse_json(body)
        raise


def decode_item(raw: msgspec.Raw) -> dict[str, Any] | None:
    """One batch item, or None when it is not a JSON object."""
    try:
        return _item_decoder.decode(raw)
    except msgspec.DecodeError:
        return None


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BodyError(400, "invalid_json", "the request body is empty")
    try:
        return _decoder.decode(body)
    except RecursionError:
        raise TOO_DEEP from None
    except msgspec.DecodeError as exc:
        raise BodyError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from exc
