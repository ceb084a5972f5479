"""The events Engage sends, read by Segment's own code: actions-core's
`engageAudienceMembership` (what bridged audience destinations decide membership with) answers
true for each Audience Entered and its identify, false for each Audience Exited and its
identify, and nothing for a computed trait's identify."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from engage_kit import DAY, T0, Rig, definitions

from npm_installs import installed_once
from sluice.bridge.install import install, lock_sha256

SCRIPT = """
const path = require('path')
const core = path.join(process.argv[1], 'node_modules/@segment/actions-core/dist/cjs')
const { engageAudienceMembership } = require(path.join(core, 'audience-membership.js'))
const events = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'))
console.log(JSON.stringify(events.map((e) => engageAudienceMembership(e) ?? null)))
"""


def test_actions_core_reads_the_membership(sqlite_rig: Rig, tmp_path: Path) -> None:
    bridge = installed_once("bridge", lock_sha256(), install) / "bridge"
    rig = sqlite_rig
    consumer = rig.engage(
        definitions(
            [{"key": "orders", "kind": "count", "event": "Order Completed"}],
            [
                {
                    "key": "ordered_twice",
                    "condition": {
                        "events": [{"event": "Order Completed", "count": 2, "within_days": 7}]
                    },
                }
            ],
        )
    )
    for n in (0, 1):
        rig.send({"userId": "jane", "event": "Order Completed"}, at_ms=T0 + n * DAY)
        rig.run(consumer)
    consumer.tick(T0 + 7 * DAY)
    rig.run(consumer)
    events = rig.emitted()
    (tmp_path / "events.json").write_text(json.dumps(events))
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "-e", SCRIPT, str(bridge), str(tmp_path / "events.json")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    answers = json.loads(done.stdout)
    expected = []
    for e in events:
        if e["context"]["personas"]["computation_class"] != "audience":
            expected.append(None)
        elif e["type"] == "track":
            expected.append(e["event"] == "Audience Entered")
        else:
            expected.append(e["traits"]["ordered_twice"])
    assert answers == expected
    assert answers.count(True) == 2 and answers.count(False) == 2  # entered, then exited
