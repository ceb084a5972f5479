"""`sluice apply` refuses a lake whose storage settings cannot work, naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluice.workspace.destinations import check_destinations
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.files import parse_workspace


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"storage": "s3"}, "bucket", "needed"),
        ({"storage": "s3", "bucket": "Bad_Bucket"}, "bucket", "Bad_Bucket"),
        ({"storage": "s3", "bucket": "lake", "access_key_id": "AKIA"}, "secret_access_key",
         "go together"),
        ({"storage": "s3", "bucket": "lake", "endpoint_url": "ftp://x"}, "endpoint_url", ""),
        ({"storage": "floppy"}, "storage", ""),
    ],
    ids=["no-bucket", "bad-bucket", "half-keys", "bad-endpoint", "bad-storage"],
)  # fmt: skip
def test_apply_refuses_lake_settings_that_cannot_work(
    settings: dict[str, Any], field: str, words: str
) -> None:
    doc = {"warehouses": [{"id": "lake", "type": "lake", "settings": settings}]}
    ws = parse_workspace(json.dumps(doc), None)
    with pytest.raises(WorkspaceError) as caught:
        check_destinations(ws)
    assert caught.value.path == f"warehouses[0].settings.{field}", caught.value
    assert words in caught.value.message


def test_a_valid_s3_lake_passes() -> None:
    doc = {"warehouses": [{"id": "lake", "type": "lake", "settings": {
        "storage": "s3", "bucket": "my-lake", "endpoint_url": "http://127.0.0.1:9000",
        "access_key_id": "k", "secret_access_key": "s", "path_style": True}}]}  # fmt: skip
    check_destinations(parse_workspace(json.dumps(doc), None))
