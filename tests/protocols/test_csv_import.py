"""`sluice protocols import --csv`: Segment's tracking plan spreadsheet becomes a plan that
`sluice apply` accepts and the collector enforces; a cell it cannot read is named by file, row
and column."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sluice.protocols.enforce import Enforcer
from sluice.protocols.plan import compile_plan
from sluice.protocols.settings import Enforcement

HEADER = ("Event Type,Event Name,Event Description,Version,Labels,Property Name,"
          "Property Description,Data Type,Required,Permitted Values,Enum Values")  # fmt: skip
PLAN = f"""{HEADER}
Track,Order Completed,An order was paid,1,team:growth,order_id,the order,string,required,,
,,,,,revenue,,number,optional,,
,,,,,currency,,string,required,[A-Z]{{3}},
,,,,,products.product_id,,string,required,,
,,,,,tier,,string,optional,,"gold, silver"
Track,Order Completed,,2,,order_id,,string,required,,
Track,Signed Up,,,,,,,,,
Identify,,,,,email,,string,required,,
,,,,,created_at,,Date time,optional,,
Page,Home,,,,path,,string|null,optional,,
Common,,,,,userId,,string,optional,,
"""


def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sluice", *args], capture_output=True, text=True)


def test_a_spreadsheet_becomes_a_plan_apply_accepts_and_enforces(tmp_path: Path) -> None:
    sheet = tmp_path / "acme-Shop Plan--2026-12-01--10-00-utc.csv"
    sheet.write_text(PLAN)
    done = sluice("protocols", "import", "--csv", str(sheet), "--source", "web")
    assert done.returncode == 0, done.stderr
    [entry] = yaml.safe_load(done.stdout)["tracking_plans"]
    # Segment names a download `workspaceSlug-planName--date--time-utc`: the date is dropped
    assert (entry["id"], entry["name"], entry["sources"]) == (
        "acme-shop-plan",
        "acme-Shop Plan",
        ["web"],
    )
    events = {(e["name"], e.get("version", 1)): e for e in entry["rules"]["events"]}
    assert set(events) == {("Order Completed", 1), ("Order Completed", 2), ("Signed Up", 1),
                           ("Home", 1)}  # fmt: skip
    order = events[("Order Completed", 1)]
    assert (order["description"], order["labels"]) == ("An order was paid", {"team": "growth"})
    section = order["rules"]["properties"]["properties"]
    assert section["required"] == ["order_id", "currency"]
    assert section["properties"]["tier"] == {"type": "string", "enum": ["gold", "silver"]}
    identify = entry["rules"]["identify"]["properties"]["traits"]["properties"]
    assert identify["created_at"] == {"type": "string", "format": "date-time"}

    workspace = tmp_path / "workspace.json"
    workspace.write_text(json.dumps({"sources": [{"id": "web"}], "tracking_plans": [entry]}))
    applied = sluice("apply", str(workspace), "--data-dir", str(tmp_path / "data"))
    assert applied.returncode == 0, applied.stderr

    plan = compile_plan(entry["id"], entry["name"], entry["rules"])
    enforcer = Enforcer("web", plan, Enforcement())
    event = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m",
             "properties": {"order_id": "o1", "currency": "usd", "tier": "bronze",
                            "products": {}}}  # fmt: skip
    outcome = enforcer.check(event)
    assert outcome is not None
    assert sorted((v["field"], v["type"]) for v in outcome.violations) == [
        ("properties.currency", "Invalid Value"),
        ("properties.products.product_id", "Required"),
        ("properties.tier", "Invalid Value"),
    ]
    good = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m",
            "properties": {"order_id": "o1", "currency": "USD",
                           "products": {"product_id": "p"}}}  # fmt: skip
    assert enforcer.check(good) is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            ",,,,,order_id,,string,required,,",
            "row 2, column Event Name: no event yet",
            id="no-event",
        ),
        pytest.param(
            "Track,A,,,,x,,strng,required,,",
            "row 2, column Data Type: unknown type 'strng'",
            id="data-type",
        ),
        pytest.param(
            "Track,A,,0,,x,,string,required,,",
            "row 2, column Version: '0' is not a version",
            id="version",
        ),
        pytest.param(
            "Track,A,,,,x,,string,maybe,,",
            "row 2, column Required: 'maybe': expected required or optional",
            id="required",
        ),
        pytest.param(
            "Alias,A,,,,x,,string,required,,",
            "row 2, column Event Type: unknown 'Alias'",
            id="event-type",
        ),
        pytest.param(
            "Track,A,,,,x,,string,required,,\nTrack,A,,,,x,,number,optional,,",
            "row 3, column Property Name: 'x' is listed twice",
            id="twice",
        ),
        pytest.param(
            "Track,A,,,,x,,string,required,([a-z],",
            "row 2, column Permitted Values: not a regular expression",
            id="regex",
        ),
        pytest.param(
            'Track,A,,,,x,,integer,required,,"1, two"',
            "row 2, column Enum Values: '1, two': not numbers",
            id="enum",
        ),
        pytest.param(
            "Track,,,,,x,,string,required,,",
            "row 2, column Event Name: a Track event needs a name",
            id="no-name",
        ),
    ],
)
def test_a_bad_cell_is_named_by_file_row_and_column(
    tmp_path: Path, rows: str, message: str
) -> None:
    sheet = tmp_path / "plan.csv"
    sheet.write_text(f"{HEADER}\n{rows}\n")
    done = sluice("protocols", "import", "--csv", str(sheet))
    assert done.returncode == 2
    assert done.stderr.startswith(f"sluice: {sheet}: {message}"), done.stderr


def test_a_file_without_the_columns_is_refused(tmp_path: Path) -> None:
    sheet = tmp_path / "plan.csv"
    sheet.write_text("a,b\n1,2\n")
    done = sluice("protocols", "import", "--csv", str(sheet))
    assert done.returncode == 2
    assert f"{sheet}: row 1: no Event Name or Property Name column" in done.stderr
