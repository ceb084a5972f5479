"""Deletion through a bridged destination's `onDelete`: Segment's own code in the real sidecar.

Loops (Actions) of the pinned @segment/action-destinations defines `onDelete` (`POST
https://app.loops.so/api/v1/contacts/delete`, `{"userId": [id]}`, its API key as a bearer):
with `delivery.base_url` pointing at a recording server, the request arrives there as Segment's
code makes it. The bridge's package comes from the tests' install cache (tests/npm_installs.py),
with this checkout's sidecar.js beside it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from npm_installs import installed_once
from recorder import Recorder, Reply
from sluice.bridge import location
from sluice.bridge.install import SHIPPED_FILES, install, js_dir, lock_sha256
from sluice.bridge.sidecar import Sidecar
from sluice.config import Settings
from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.privacy.targets.bridged import BridgedTarget
from sluice.privacy.targets.external import FixedTarget, external_targets
from sluice.workspace.model import Destination, Workspace

API_KEY = "loops-key-5e1f9a"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir whose bridge/ is the installed package with this checkout's sidecar.js."""
    cached = installed_once("bridge", lock_sha256(), install)
    root = tmp_path_factory.mktemp("erasure-bridge")
    bridge = root / "bridge"
    bridge.mkdir()
    (bridge / "node_modules").symlink_to(cached / "bridge" / "node_modules")
    # Without `has_on_delete` (as a catalogue written before the sidecar knew it): external
    # targets then ask the sidecar, which is the path these tests exercise. Whether the cached
    # catalogue has the field depends on which checkout's sidecar.js installed it last.
    doc = json.loads((cached / "bridge" / "catalog.json").read_bytes())
    for entry in doc["destinations"]:
        entry.pop("has_on_delete", None)
    (bridge / "catalog.json").write_text(json.dumps(doc))
    for name in SHIPPED_FILES:
        shutil.copyfile(js_dir() / name, bridge / name)
    before = location.data_dir()
    location.use_data_dir(root)
    try:
        yield root
    finally:
        location.use_data_dir(before)


def loops(base_url: str, **settings: Any) -> Destination:
    return Destination(
        id="loops",
        type="segment:loops",
        settings={"apiKey": API_KEY, **settings},
        delivery={"base_url": base_url},
    )


def run_deletion(data_dir: Path, doc: Destination, subject: Subject) -> TargetOutcome:
    (found,) = external_targets(
        Workspace(destinations=[doc], warehouses=[]), Settings(data_dir=data_dir)
    )[1:]
    assert isinstance(found, BridgedTarget)

    async def main() -> TargetOutcome:
        sidecar = Sidecar(data_dir / "bridge")  # this loop's own (the worker's is process-wide)
        target = BridgedTarget(found.destination_id, found.destination, lambda: sidecar)
        try:
            return await target.delete("reg-3", subject)
        finally:
            await sidecar.stop()

    return asyncio.run(main())


def test_loops_on_delete_sends_segments_request(data_dir: Path, recorder: Recorder) -> None:
    recorder.respond_with(Reply(200, {"success": True}))
    subject = Subject("USER_ID", ("u-alice-7f3a", "u-dave-0b1c"))
    outcome = run_deletion(data_dir, loops(recorder.base_url), subject)
    assert outcome.status == "FINISHED", outcome
    assert outcome.target == "destination:loops"
    assert [(r.method, r.path) for r in recorder.requests] == [
        ("POST", "/api/v1/contacts/delete"),
        ("POST", "/api/v1/contacts/delete"),
    ]
    first = recorder.requests[0]
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.headers["content-type"] == "application/json"
    assert [r.json() for r in recorder.requests] == [
        {"userId": ["u-alice-7f3a"]},
        {"userId": ["u-dave-0b1c"]},
    ]


def test_a_500_from_the_vendor_is_retrying_without_the_key(
    data_dir: Path, recorder: Recorder
) -> None:
    recorder.respond_with(Reply(500, f"boom for {API_KEY}"))
    outcome = run_deletion(data_dir, loops(recorder.base_url), Subject("USER_ID", ("u-1",)))
    assert outcome.status == "RETRYING", outcome
    assert "HTTP 500" in outcome.detail
    assert API_KEY not in outcome.detail


def test_a_401_is_failed(data_dir: Path, recorder: Recorder) -> None:
    recorder.respond_with(Reply(401, {"message": "Invalid API key"}))
    outcome = run_deletion(data_dir, loops(recorder.base_url), Subject("USER_ID", ("u-1",)))
    assert outcome.status == "FAILED", outcome
    assert "HTTP 401" in outcome.detail


def test_a_definition_without_on_delete_is_not_supported(
    data_dir: Path, recorder: Recorder
) -> None:
    doc = Destination(
        id="hook",
        type="segment:webhook",
        settings={},
        delivery={"base_url": recorder.base_url},
    )
    outcome = run_deletion(data_dir, doc, Subject("USER_ID", ("u-1",)))
    assert outcome.status == "NOT_SUPPORTED", outcome
    assert "has no onDelete" in outcome.detail
    assert recorder.requests == []


def test_a_catalogue_that_knows_says_not_supported_without_node(
    data_dir: Path, tmp_path: Path
) -> None:
    """A catalogue written by this sidecar.js (`sluice bridge install`) says which definitions
    have onDelete: the others are NOT_SUPPORTED without starting Node."""
    doc = json.loads((data_dir / "bridge" / "catalog.json").read_bytes())
    for entry in doc["destinations"]:
        entry["has_on_delete"] = entry["slug"] == "loops"
    (tmp_path / "bridge").mkdir()
    (tmp_path / "bridge" / "catalog.json").write_text(json.dumps(doc))
    location.use_data_dir(tmp_path)
    try:
        hook, kept = external_targets(
            Workspace(
                destinations=[
                    Destination(id="hook", type="segment:webhook"),
                    loops("http://127.0.0.1:9"),
                ]
            ),
            Settings(data_dir=tmp_path),
        )[1:]
    finally:
        location.use_data_dir(data_dir)
    assert isinstance(hook, FixedTarget)
    assert hook.status == "NOT_SUPPORTED"
    assert "has no deletion API" in hook.detail
    assert isinstance(kept, BridgedTarget)
