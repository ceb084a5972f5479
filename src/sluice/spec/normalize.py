"""Turn one incoming item into the event Segment would have stored, or say why it is rejected.

What happens, in Segment's order: the type comes from the path (single calls) or the item
(batches); the batch envelope's `sentAt`, `context` and `integrations` are merged in (the item's own
values win); ids are checked per call; `messageId` is kept or generated; `receivedAt` is stamped,
the client `timestamp` becomes `originalTimestamp` and `timestamp` is skew-corrected as
`receivedAt - (sentAt - originalTimestamp)`; `context.ip` is filled from the peer for client-side
libraries. Every field Sluice does not know is passed through untouched.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import Raw

from sluice.spec.calls import (
    CALL_TYPES,
    CLIENT_SIDE_LIBRARIES,
    MAX_MESSAGE_ID_LENGTH,
    RejectReason,
)
from sluice.spec.timestamps import MAX_MS, MIN_MS, format_ms, parse_ms

_DECODED_FIELDS = frozenset(
    {
        "type",
        "userId",
        "anonymousId",
        "groupId",
        "previousId",
        "event",
        "messageId",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "context",
        "integrations",
        "writeKey",
    }
)
_decode_raw = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Envelope:
    """What one request contributes to each of its items."""

    received_at_ms: int
    received_at: str
    peer_ip: str | None = None
    sent_at: Any = None
    sent_at_ms: int | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None


def make_envelope(
    received_at_ms: int,
    peer_ip: str | None = None,
    sent_at: Any = None,
    context: dict[str, Any] | None = None,
    integrations: dict[str, Any] | None = None,
) -> Envelope:
    """An envelope with its timestamps parsed and formatted once for all its items.

    A `sentAt` that is not a time (see `_stamp_times`) is kept as sent, and corrects nothing.
    """
    sent_ms = parse_ms(sent_at)
    return Envelope(
        received_at_ms=received_at_ms,
        received_at=format_ms(received_at_ms),
        peer_ip=peer_ip,
        sent_at=format_ms(sent_ms) if sent_ms is not None else sent_at,
        sent_at_ms=sent_ms,
        context=context,
        integrations=integrations,
    )


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    detail: str


def _identifier(value: Any) -> str | None:
    """A usable id: non-empty strings as they are, numbers as strings (libraries stringify ids)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        text = str(value)
        item_id = text[:-2] if text.endswith(".0") else text
        return item_id
    return None


def _merge(envelope: dict[str, Any] | None, own: Any, field: str) -> dict[str, Any] | Rejected:
    if own is None:
        return dict(envelope) if envelope else {}
    if not isinstance(own, dict):
        return Rejected(RejectReason.INVALID_FIELD, f"{field} must be an object")
    if envelope:
        merged = dict(envelope)
        merged.update(own)
        return merged
    return own


def _check_ids(item: dict[str, Any], call: str) -> Rejected | None:
    for field in ("userId", "anonymousId", "groupId", "previousId"):
        if field in item and item[field] is not None:
            value = _identifier(item[field])
            if value is None and item[field] != "":
                return Rejected(RejectReason.INVALID_FIELD, f"{field} must be a string or number")
            item[field] = value
    if call == "alias":
        if not item.get("userId"):
            return Rejected(RejectReason.MISSING_USER_ID, "alias requires userId")
        if not item.get("previousId"):
            return Rejected(RejectReason.MISSING_PREVIOUS_ID, "alias requires previousId")
        return None
    if not item.get("userId") and not item.get("anonymousId"):
        return Rejected(RejectReason.NO_USER_ANON_ID, "userId or anonymousId is required")
    if call == "track":
        event = item.get("event")
        if not isinstance(event, str) or not event:
            return Rejected(RejectReason.MISSING_EVENT, "track requires a non-empty event name")
    elif call == "group" and not item.get("groupId"):
        return Rejected(RejectReason.MISSING_GROUP_ID, "group requires groupId")
    for field in ("properties", "traits"):
        if not _object_or_null(item.get(field)):
            return Rejected(RejectReason.INVALID_FIELD, f"{field} must be an object")
    return None


def _object_or_null(value: Any) -> bool:
    if value is None or isinstance(value, dict):
        return True
    if type(value) is Raw:
        first = memoryview(value)[:1].tobytes()
        return first == b"{" or first == b"n"
    return False


def _decode_fields(item: dict[str, Any]) -> None:
    """Decode the fields normalisation reads; all others stay raw JSON and are copied verbatim."""
    for field, value in item.items():
        if field in _DECODED_FIELDS and type(value) is Raw:
            item[field] = _decode_raw(value)


def normalize(item: Any, envelope: Envelope, path_type: str | None = None) -> Rejected | None:
    """Normalise `item` in place; return why it is rejected, or None when it is good.

    Values may be `msgspec.Raw` (undecoded JSON): the collector decodes items only one level deep,
    so the bulk of an event (properties, traits) is never turned into Python objects and back.
    """
    if not isinstance(item, dict):
        return Rejected(RejectReason.NOT_AN_OBJECT, "each message must be a JSON object")
    _decode_fields(item)
    call = path_type or item.get("type")
    if not isinstance(call, str) or call not in CALL_TYPES:
        return Rejected(RejectReason.INVALID_TYPE, f"unknown type {call!r}")
    item["type"] = call

    context = _merge(envelope.context, item.get("context"), "context")
    if isinstance(context, Rejected):
        return context
    integrations = _merge(envelope.integrations, item.get("integrations"), "integrations")
    if isinstance(integrations, Rejected):
        return integrations
    rejected = _check_ids(item, call)
    if rejected is not None:
        return rejected

    message_id = item.get("messageId")
    if isinstance(message_id, int | float) and not isinstance(message_id, bool):
        message_id = item["messageId"] = _identifier(message_id)  # as ids: 7 becomes "7"
    if message_id is None or message_id == "":
        item["messageId"] = str(uuid.uuid4())
    elif not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        return Rejected(
            RejectReason.INVALID_MESSAGE_ID,
            f"messageId must be a string of at most {MAX_MESSAGE_ID_LENGTH} characters",
        )

    _stamp_times(item, envelope)
    if context or "context" in item:
        item["context"] = context
        if envelope.peer_ip is not None and "ip" not in context:
            _fill_ip(context, envelope.peer_ip)
    if integrations or "integrations" in item:
        item["integrations"] = integrations
    item.pop("writeKey", None)
    return None


def _stamp_times(item: dict[str, Any], envelope: Envelope) -> None:
    """`receivedAt`, `originalTimestamp`, `sentAt` and the skew-corrected `timestamp`.

    Never raises, whatever the client sends. What Segment does with a value it cannot read is kept:
    a `timestamp` that is not a time (not a string, numbers included, unparseable, or outside
    years 1 to 9999 in UTC) stays as sent in `originalTimestamp` and `timestamp` is `receivedAt`
    (segmentio/segment-import#2); such a `sentAt` stays as sent in `sentAt` and corrects nothing,
    so `timestamp` is `originalTimestamp` (segmentio/analytics-swift#75, analytics-java#340). A
    correction that leaves years 1 to 9999 (a `sentAt` of 9999-12-31 beside a timestamp of today)
    makes `timestamp` `receivedAt`; `originalTimestamp` and `sentAt` are still written normalised.
    """
    received_ms = envelope.received_at_ms
    item["receivedAt"] = envelope.received_at
    raw_sent = item.get("sentAt")
    if raw_sent is None:
        # The envelope's sentAt, parsed once per request.
        sent_ms = envelope.sent_at_ms
        if sent_ms is not None or envelope.sent_at is not None:
            item["sentAt"] = envelope.sent_at
    else:
        sent_ms = parse_ms(raw_sent)
        if sent_ms is not None:
            item["sentAt"] = format_ms(sent_ms)
    raw_ts = item.get("timestamp")
    if raw_ts is None:
        raw_ts = item.get("originalTimestamp")
    original_ms = parse_ms(raw_ts)
    if original_ms is None:
        if raw_ts is not None:
            item["originalTimestamp"] = raw_ts
        item["timestamp"] = envelope.received_at
        return
    item["originalTimestamp"] = format_ms(original_ms)
    if sent_ms is None:
        item["timestamp"] = item["originalTimestamp"]
        return
    corrected_ms = received_ms - (sent_ms - original_ms)
    if MIN_MS <= corrected_ms <= MAX_MS:
        item["timestamp"] = format_ms(corrected_ms)
    else:
        item["timestamp"] = envelope.received_at


def _fill_ip(context: dict[str, Any], peer_ip: str) -> None:
    """Segment fills `context.ip` only for client-side libraries or `context.direct`, IPv4 only."""
    if ":" in peer_ip:
        return
    library = context.get("library")
    name = library.get("name") if isinstance(library, dict) else None
    if name in CLIENT_SIDE_LIBRARIES or context.get("direct") is True:
        context["ip"] = peer_ip
