"""The UI's preview of a destination shows what it really sends: its destination-scoped
transformations and PII rule applied after the filters (ui/preview.py with the stage)."""

from __future__ import annotations

import copy
import hashlib

import msgspec

from sluice.transform.stages import build_destinations
from sluice.ui.preview import preview
from sluice.workspace.model_privacy import PiiSettings
from sluice.workspace.model_transformations import Transformation

HOOK = {"id": "hook", "type": "webhook", "settings": {"urls": ["http://127.0.0.1:9/h"]}}
CARD = "4111 1111 1111 1111"


def test_the_preview_hashes_and_renames_as_delivery_does() -> None:
    pii = msgspec.convert({"destinations": {"hook": {"red": "hash"}}}, PiiSettings)
    rename = msgspec.convert({"id": "r", "source": "web", "destination": "hook",
                              "type": "rename_event", "event": "Paid",
                              "new_event_name": "paid"}, Transformation)  # fmt: skip
    stage = build_destinations([rename], pii)["hook"]
    event = {"type": "track", "event": "Paid", "userId": "u", "messageId": "m",
             "properties": {"card": CARD}}  # fmt: skip
    shown = preview(HOOK, copy.deepcopy(event), "web", stage)
    assert shown["passes"], shown
    body = shown["requests"][0]["body"]  # the JSON body, decoded
    assert body["event"] == "paid"
    assert body["properties"]["card"] == hashlib.sha256(CARD.encode()).hexdigest()
    plain = preview(HOOK, copy.deepcopy(event), "web")
    assert plain["requests"][0]["body"]["properties"]["card"] == CARD
