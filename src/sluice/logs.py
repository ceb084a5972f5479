"""Logging for every Sluice process: one level and one format (`SLUICE_LOG_LEVEL`,
`SLUICE_LOG_FORMAT=text|json`), to stderr, where a service manager or container runtime collects
it.

JSON lines carry `time`, `level`, `logger`, `process` (which Sluice process: `serve`, `http`,
`worker`, `delivery`, `batch`, `cli`), `pid`, `message` and `exception` when there is one: one
object per line, for log shippers. Text lines hold the same fields, for a terminal.

Nothing here redacts messages: secrets are kept out of log lines where they are written (write
keys are printed once, when created; delivery errors go through delivery/exchange.py's
redaction). The one exception is the access log, whose request paths can hold a write key
(`/v1/projects/<write key>/settings`): `redact_path` replaces it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import msgspec

_PROCESS = "cli"
# A write key in a path (the settings endpoint, the pixel's /v1/pixel/... takes it in the query).
_KEY_IN_PATH = re.compile(r"(/v1/projects/)[^/?]+")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(sluice_process)s %(name)s: %(message)s"


def redact_path(path: str) -> str:
    """A request path as it may be logged: a write key in it replaced."""
    return _KEY_IN_PATH.sub(r"\1<redacted>", path)


class _ProcessField(logging.Filter):
    """Adds which Sluice process wrote the line (`sluice_process`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.sluice_process = _PROCESS
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": getattr(record, "sluice_process", _PROCESS),
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: str, process: str) -> None:
    """Set up the root logger of this process (again after a fork: `process` changes)."""
    global _PROCESS
    _PROCESS = process
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(_ProcessField())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO stay at WARNING unless asked for debug.
    for name in ("aiohttp.access", "asyncio", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


class _RedactedAccess(logging.Filter):
    """Granian's access records carry the request as a dict: its path loses any write key."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and isinstance(record.args.get("path"), str):
            record.args = {**record.args, "path": redact_path(record.args["path"])}
        return True


def _access_filter() -> logging.Filter:
    return _RedactedAccess()


def _process_filter() -> logging.Filter:
    return _ProcessField()


def _formatter(log_format: str) -> logging.Formatter:
    return formatter(log_format)


ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


def granian_log_config(log_format: str) -> dict[str, Any]:
    """Granian's logging (its own lines and the access log) in Sluice's format, to stderr."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "sluice",
        "filters": ["process", "access"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"sluice": {"()": f"{__name__}._formatter", "log_format": log_format}},
        "filters": {
            "process": {"()": f"{__name__}._process_filter"},
            "access": {"()": f"{__name__}._access_filter"},
        },
        "handlers": {"console": handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
