"""Logs: one level and format for every process (SLUICE_LOG_LEVEL, SLUICE_LOG_FORMAT), state
changes an operator cares about at INFO, and no secret in any line."""

from __future__ import annotations

import json
import logging
import sys

import msgspec
import pytest

from recorder import Recorder
from server import WRITE_KEY, StartServer, wait_for
from sluice.config import ConfigError, load_settings
from sluice.logs import JsonFormatter, redact_path
from sluice.store.base import ConfigObject


def test_settings_are_checked() -> None:
    settings = load_settings({"SLUICE_LOG_LEVEL": "DEBUG", "SLUICE_LOG_FORMAT": "json"})
    assert (settings.log_level, settings.log_format) == ("debug", "json")
    assert load_settings({}).log_level == "info"
    assert load_settings({"SLUICE_ACCESS_LOG": "yes"}).access_log is True
    for env in ({"SLUICE_LOG_LEVEL": "loud"}, {"SLUICE_LOG_FORMAT": "xml"},
                {"SLUICE_ACCESS_LOG": "maybe"}):  # fmt: skip
        with pytest.raises(ConfigError):
            load_settings(env)


def test_a_json_line_is_one_object_with_the_exception() -> None:
    record = logging.LogRecord("x.y", logging.ERROR, __file__, 1, "a %s", ("b",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["logger"] == "x.y" and line["message"] == "a b"
    assert "ValueError: boom" in line["exception"]
    assert line["time"].endswith("Z")


def test_write_keys_in_paths_are_redacted() -> None:
    assert redact_path("/v1/projects/wk_123/settings") == "/v1/projects/<redacted>/settings"
    assert redact_path("/v1/batch") == "/v1/batch"


def test_the_worker_logs_its_state_changes_as_json(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = start_server({"SLUICE_WORKERS": "1", "SLUICE_LOG_FORMAT": "json"})
    doc = {"id": "hook", "type": "webhook", "sources": ["web"],
           "settings": {"urls": [f"{recorder.base_url}/hook"]}}  # fmt: skip
    server.store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(doc)))

    def lines() -> list[dict[str, object]]:
        found = []
        for text in server.log().splitlines():
            if text.startswith("{"):
                found.append(json.loads(text))
        return found

    wait_for(lambda: any(line["message"] == "destination:hook: lease taken, running it"
                         for line in lines()), 20)  # fmt: skip
    processes = {line["process"] for line in lines()}
    assert {"delivery", "batch"} <= processes
    messages = [str(line["message"]) for line in lines()]
    assert any(m.startswith("workspace version ") for m in messages)
    assert any(m == "archive: lease taken, running it" for m in messages)
    assert any(m.startswith("Sluice listening on http://127.0.0.1:") for m in messages)
    # Every line a log shipper reads is one object: the startup banner too.
    assert [t for t in server.log().splitlines() if t.strip() and not t.startswith("{")] == []
    assert WRITE_KEY not in server.log()
