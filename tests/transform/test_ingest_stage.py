"""The ingest hook (collector/batch.py) with real stages: a source's transformation and PII rule
change what is stored and are counted; a stage that fails refuses its item alone, and without
storing its body (it may hold the PII the rule was there to remove)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from sluice.collector.batch import build_batch
from sluice.config import Settings
from sluice.spec.normalize import make_envelope
from sluice.store.base_event_store import SourceRow
from sluice.transform.compile import Transformer
from sluice.transform.stages import IngestStage, build_ingest
from sluice.workspace.model_privacy import PiiSettings
from sluice.workspace.model_transformations import Transformation

SOURCE = SourceRow("web", "Web", ("wk_web_ingest_01",), True)


def batch(tmp_path: Path, stages: dict[str, IngestStage], *items: dict[str, Any]) -> Any:
    return build_batch(
        Settings(data_dir=tmp_path), {}, SOURCE, list(items), make_envelope(1_700_000_000_000),
        None, stages=stages,
    )  # fmt: skip


def item(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Paid", "userId": "u", "messageId": message_id, **fields}


def test_the_stored_payload_is_the_changed_event_and_changes_are_counted(tmp_path: Path) -> None:
    rename = msgspec.convert({"id": "r", "source": "web", "type": "rename_event", "event": "Paid",
                              "new_event_name": "Order Paid"}, Transformation)  # fmt: skip
    pii = msgspec.convert({"sources": {"web": {"red": "block", "yellow": "hash"}}}, PiiSettings)
    stages = build_ingest([rename], pii)
    done = batch(tmp_path, stages, item("a", properties={"password": "x", "email": "a@b.co"}))
    (event,) = done.events
    assert event.event == "Order Paid"
    stored = msgspec.json.decode(event.payload)
    assert stored["event"] == "Order Paid"
    assert "password" not in stored["properties"]
    assert stored["properties"]["email"] != "a@b.co" and len(stored["properties"]["email"]) == 64
    assert done.counters[("web", "pii_blocked")] == 1 and done.counters[("web", "pii_hashed")] == 1


def test_a_failing_stage_refuses_its_item_alone_without_its_body(tmp_path: Path) -> None:
    def broken(event: dict[str, Any]) -> bool:
        raise KeyError("boom")

    stages = {"web": IngestStage(Transformer({("track", "Paid"): (broken,)}), None)}
    done = batch(tmp_path, stages, item("bad", properties={"card": "4111 1111 1111 1111"}),
                 {**item("good"), "event": "Other"})  # fmt: skip
    assert [e.message_id for e in done.events] == ["good"]
    (rejection,) = done.rejections
    assert rejection.reason == "invalid_field"
    assert "transformations or PII rule failed: KeyError" in rejection.detail
    assert b"4111" not in rejection.payload
