"""A request's items turned into the batch the committer appends: each item checked (its own
write key, count and size limits, bytes the stores cannot hold) and normalised, or rejected with
a reason, alone: one bad item never refuses its neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import msgspec
from msgspec import Raw

from sluice.collector.sanitize import item_fault
from sluice.config import Settings
from sluice.privacy.suppression import is_suppressed
from sluice.protocols.enforce import Enforcer
from sluice.protocols.ingest import record as record_protocols
from sluice.spec.calls import RejectReason
from sluice.spec.normalize import Envelope, Rejected, normalize
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.base_event_store import Rejection, SourceRow
from sluice.transform.stages import IngestStage

log = logging.getLogger("sluice.collector.app")
_encode = msgspec.json.encode
decode_raw = msgspec.json.Decoder().decode


def build_batch(
    settings: Settings,
    sources_by_key: Mapping[str, SourceRow],
    source: SourceRow,
    items: list[dict[str, Any] | None],
    envelope: Envelope,
    path_type: str | None,
    raws: list[Raw] | None = None,
    plans: Mapping[str, Enforcer] | None = None,
    suppressed: AbstractSet[str] = frozenset(),
    stages: Mapping[str, IngestStage] | None = None,
) -> AppendBatch:
    """Normalise every item; `raws` are a batch's items as received (for their sizes);
    `plans`: the sources' tracking plans (protocols/registry.py), checked per item;
    `suppressed`: hashes of user ids whose events are counted and dropped (docs/privacy.md);
    `stages`: source-scoped transformations and PII rules (transform/stages.py), after both."""
    max_bytes = settings.max_message_bytes
    max_items = settings.max_batch_items
    batch = AppendBatch()
    events = batch.events
    source_id = source.id
    batch.count(source_id, "received", len(items))
    for index, item in enumerate(items):
        item_source = source_id
        raw = raws[index] if raws is not None else None
        refused = None
        if item is None:
            refused = Rejected(RejectReason.NOT_AN_OBJECT, "each message must be a JSON object")
        else:
            own_key = text_value(item.get("writeKey"))
            if own_key:
                own = sources_by_key.get(own_key)
                if own is None or own.webhook is not None:
                    refused = Rejected(RejectReason.INVALID_WRITE_KEY, "item writeKey unknown")
                elif not own.enabled:
                    refused = Rejected(RejectReason.SOURCE_DISABLED, "item source disabled")
                else:
                    item_source = own.id
        if refused is None and index >= max_items:
            refused = Rejected(RejectReason.TOO_MANY_ITEMS, f"over {max_items} items")
        # The limit applies to the item as the client sent it, not to what Sluice adds.
        if refused is None and raw is not None and len(raw) > max_bytes:
            refused = Rejected(RejectReason.MESSAGE_TOO_LARGE, f"over {max_bytes} bytes")
        if refused is None and raw is not None:
            fault = item_fault(raw)
            if fault is not None:
                refused = Rejected(RejectReason(fault[0]), fault[1])
        if refused is None:
            try:
                refused = normalize(item, envelope, path_type)
            except Exception as exc:  # a case normalisation missed: this item only, no 500
                log.exception("item of source %s could not be normalised", item_source)
                detail = f"could not be normalised: {type(exc).__name__}: {exc}"[:300]
                refused = Rejected(RejectReason.INVALID_FIELD, detail)
        if refused is not None:
            _reject(max_bytes, batch, item_source, refused, raw if item is None else item, envelope)
            continue
        assert item is not None
        message_id = item["messageId"]
        if "\x00" in message_id:  # no store can key on it (PostgreSQL refuses NUL in text)
            refused = Rejected(RejectReason.INVALID_MESSAGE_ID, "messageId contains NUL")
            _reject(max_bytes, batch, item_source, refused, item, envelope)
            continue
        if suppressed and is_suppressed(item.get("userId"), suppressed):  # not even its body
            batch.count(item_source, "suppressed")
            continue
        if plans:  # a source without a plan costs this test and one failed lookup
            enforcer = plans.get(item_source)
            if enforcer is not None:
                outcome = enforcer.check(item)
                if outcome is not None and not record_protocols(
                    batch, enforcer, item, outcome, envelope.received_at_ms, max_bytes
                ):
                    continue
        if stages:  # transformations and PII controls: what is stored is the changed event
            stage = stages.get(item_source)
            if stage is not None:
                try:
                    changes = stage.apply(item)
                except Exception as exc:  # refused alone, and without its body: it may hold PII
                    log.exception("transformations of source %s failed on an item", item_source)
                    detail = f"transformations or PII rule failed: {type(exc).__name__}"
                    refused = Rejected(RejectReason.INVALID_FIELD, detail)
                    _reject(max_bytes, batch, item_source, refused, None, envelope)
                    continue
                for counter, n in changes:
                    batch.count(item_source, counter, n)
        payload = _encode(item)
        event = item.get("event")
        if isinstance(event, str) and "\x00" in event:
            event = event.replace("\x00", "\ufffd")  # the column only; the payload keeps it
        events.append(
            NewEvent(
                item_source,
                message_id,
                item["type"],
                event if isinstance(event, str) else None,
                envelope.received_at_ms,
                payload,
            )
        )
    return batch


def _reject(
    max_bytes: int,
    batch: AppendBatch,
    source_id: str,
    rejected: Rejected,
    item: Any,
    envelope: Envelope,
) -> None:
    batch.count(source_id, f"rejected:{rejected.reason.value}")
    payload = _encode(item)
    if len(payload) > max_bytes:
        payload = payload[:max_bytes]
    batch.rejections.append(
        Rejection(
            source_id, rejected.reason.value, rejected.detail, envelope.received_at_ms, payload
        )
    )


def text_value(value: Any) -> str | None:
    """A non-empty string from a decoded or raw JSON value (write keys)."""
    if type(value) is Raw:
        value = decode_raw(value)
    return value if isinstance(value, str) and value else None
