"""One typed settings object, read once at start from `SLUICE_*` environment variables.

Nothing else in Sluice reads `os.environ`: components receive the frozen `Settings` they need.
CLI flags override the environment by building a new object with `replace`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import SluiceError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_DATA_DIR = Path("sluice-data")
# Segment documents 32 KB per message and 500 KB per batch, but its own libraries overshoot
# (analytics-node was seen sending 40 KB events in 530 KB batches): the defaults leave headroom.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024  # rudder-sdk-python sends batches up to 4 MB
DEFAULT_MAX_BATCH_ITEMS = 2500
DEFAULT_DEDUPE_WINDOW_S = 24 * 3600
DEFAULT_MAX_PENDING_EVENTS = 200_000
DEFAULT_KEEP_REJECTIONS = 10_000
MAX_DEFAULT_WORKERS = 4
DEFAULT_WAREHOUSE_INTERVAL_S = 60.0
# Segment's default limit of distinct events per source schema (its "Schema Limits" page); past
# it, a new event name's tracks load into `tracks` only (docs/warehouse.md).
DEFAULT_WAREHOUSE_MAX_EVENT_TABLES = 4000
# Segment's S3 destination: a file never exceeds 100 MB and is written at least hourly.
DEFAULT_ARCHIVE_MAX_FILE_BYTES = 100 * 1024 * 1024
DEFAULT_ARCHIVE_MAX_FILE_AGE_S = 3600
DEFAULT_LEASE_S = 30.0
DEFAULT_LOG_RETENTION_DAYS = 7.0
# /readyz fails below this much free space in the data dir's file system: about 17 minutes of
# SQLite ingest at 1,000 events/s of 1 KB, room for the WAL, an archive file and a warehouse load.
DEFAULT_READY_MIN_FREE_MB = 1024
DEFAULT_METRICS_ALLOW = ("127.0.0.0/8", "::1/128")  # loopback: the node itself
DEFAULT_EGRESS_DENY = ("169.254.0.0/16", "fe80::/10")  # link-local: clouds' instance metadata
DEFAULT_BRIDGE_MAX_RSS_MB = 512.0  # actions-core and 20 destinations: ~110 MB
DEFAULT_BRIDGE_MAX_LINE_MB = 16.0  # a result line: a batch's requests and answers, each <= 8 MiB
ROLES = ("all", "collector", "worker")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
SMALL_MACHINE_CPUS = 4


class ConfigError(SluiceError):
    """A setting has a value Sluice cannot use."""


def _redacted(value: str | None) -> str:
    return "None" if value is None else "'***'"


def default_batch_nice() -> int:
    """10 on a machine of 4 CPUs or fewer, where a load would compete with delivery; else 0."""
    return 10 if (os.cpu_count() or 1) <= SMALL_MACHINE_CPUS else 0


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob Sluice has, with its default."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = field(default=None, repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Two workers measured 1.4-1.7x one on the batch benchmark of a 2-core machine.
    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))
    # Tracking API limits.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    max_batch_items: int = DEFAULT_MAX_BATCH_ITEMS
    # Deduplication on messageId per workspace.
    dedupe_window_s: int = DEFAULT_DEDUPE_WINDOW_S
    # "full" survives power loss; "normal" survives a process crash only.
    sqlite_synchronous: str = "full"
    # Overload protection: 429 + Retry-After once this many events wait for their commit.
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS
    # Per-source ingest limit in events/s (0 = unlimited), with a burst of `rate_limit_burst`.
    rate_limit_per_source: float = 0.0
    rate_limit_burst: int = 0
    # Profile API requests/s per token (0 = unlimited); Segment answers 429 past 100/s a space.
    profile_api_rate_limit: float = 100.0
    # Peers whose X-Forwarded-For header is believed (IP addresses or CIDR blocks).
    trusted_proxies: tuple[str, ...] = ()
    # Public base URL clients reach this server at (used in the settings endpoint's apiHost).
    public_url: str | None = None
    keep_rejections: int = DEFAULT_KEEP_REJECTIONS
    # Seconds between warehouse loads by the worker (0 turns automatic loads off).
    warehouse_interval_s: float = DEFAULT_WAREHOUSE_INTERVAL_S
    # Event tables a warehouse makes per source, unless its settings say `max_event_tables`.
    warehouse_max_event_tables: int = DEFAULT_WAREHOUSE_MAX_EVENT_TABLES
    # Raw archive (gzip NDJSON in Segment's segment-logs/ layout); None means <data_dir>/archive.
    archive_dir: Path | None = None
    archive_max_file_bytes: int = DEFAULT_ARCHIVE_MAX_FILE_BYTES  # uncompressed
    archive_max_file_age_s: int = DEFAULT_ARCHIVE_MAX_FILE_AGE_S
    archive_retention_days: int = 0  # 0 keeps archives forever
    # "local" keeps the archive in archive_dir; "s3" uploads each finished file to a bucket
    # (docs/storage.md). Credentials left unset come from the standard AWS chain.
    archive_storage: str = "local"
    archive_s3_bucket: str | None = None
    archive_s3_prefix: str = ""
    archive_s3_endpoint_url: str | None = None  # None: AWS S3
    archive_s3_region: str | None = None
    archive_s3_access_key_id: str | None = None
    archive_s3_secret_access_key: str | None = field(default=None, repr=False)
    archive_s3_path_style: bool = False
    # Which parts `sluice serve` runs: "all", "collector" (the HTTP API only) or "worker".
    role: str = "all"
    # Workers hold each consumer by a lease of this many seconds (renewed every third of it).
    lease_s: float = DEFAULT_LEASE_S
    # The log keeps events at least this long, and until every consumer has passed them.
    log_retention_days: float = DEFAULT_LOG_RETENTION_DAYS
    # CPU priority given up by the worker's batch process (warehouse loads, archive, retention),
    # 0-19 as `nice`: on a small machine delivery gets the CPU first.
    batch_nice: int = field(default_factory=lambda: default_batch_nice())
    # A worker process using more resident memory than this is restarted (0: no limit).
    worker_memory_limit_mb: int = 0
    # /readyz answers 503 when the data dir's file system has less free space (0: not checked).
    ready_min_free_mb: int = DEFAULT_READY_MIN_FREE_MB
    # Logging of every process: level (debug, info, warning, error) and format (text, json).
    log_level: str = "info"
    log_format: str = "text"
    # One line per HTTP request (granian's access log, write keys in paths redacted).
    access_log: bool = False
    # Who may scrape /metrics: these networks, or anyone with `Authorization: Bearer <token>`.
    metrics_allow: tuple[str, ...] = DEFAULT_METRICS_ALLOW
    metrics_token: str | None = field(default=None, repr=False)
    # Where destinations may send (delivery/egress.py): only these networks when set; never these.
    egress_allow: tuple[str, ...] = ()
    egress_deny: tuple[str, ...] = DEFAULT_EGRESS_DENY
    # The bridge's Node sidecar is restarted over this resident memory, or when it writes a
    # stdout line longer than this (docs/bridge.md).
    bridge_max_rss_mb: float = DEFAULT_BRIDGE_MAX_RSS_MB
    bridge_max_line_mb: float = DEFAULT_BRIDGE_MAX_LINE_MB

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in _SECRET_FIELDS
        )
        secrets = ", ".join(f"{name}={_redacted(getattr(self, name))}" for name in _SECRET_FIELDS)
        return f"Settings({fields}, {secrets})"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log.db"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; `None` values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_INT_FIELDS = {
    "port",
    "workers",
    "max_message_bytes",
    "max_batch_bytes",
    "max_batch_items",
    "dedupe_window_s",
    "max_pending_events",
    "rate_limit_burst",
    "keep_rejections",
    "archive_max_file_bytes",
    "archive_max_file_age_s",
    "archive_retention_days",
    "warehouse_max_event_tables",
    "batch_nice",
    "worker_memory_limit_mb",
    "ready_min_free_mb",
}
_FLOAT_FIELDS = {
    "warehouse_interval_s",
    "rate_limit_per_source",
    "profile_api_rate_limit",
    "lease_s",
    "log_retention_days",
    "bridge_max_rss_mb",
    "bridge_max_line_mb",
}


_SECRET_FIELDS = ("database_url", "metrics_token", "archive_s3_secret_access_key")
_BOOL_FIELDS = {"access_log", "archive_s3_path_style"}
ARCHIVE_STORAGES = ("local", "s3")
_NETWORK_FIELDS = ("trusted_proxies", "metrics_allow", "egress_allow", "egress_deny")


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false (1/0, yes/no, on/off)")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `SLUICE_<FIELD>` variables (e.g. `SLUICE_DATA_DIR`)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = env.get("SLUICE_" + f.name.upper())
        if raw is None or raw == "":
            continue
        name = "SLUICE_" + f.name.upper()
        try:
            if f.name in _INT_FIELDS:
                values[f.name] = int(raw)
            elif f.name in _FLOAT_FIELDS:
                values[f.name] = float(raw)
            elif f.name in ("data_dir", "archive_dir"):
                values[f.name] = Path(raw)
            elif f.name in _BOOL_FIELDS:
                values[f.name] = _boolean(name, raw)
            elif f.name in _NETWORK_FIELDS:  # "none": an empty list (e.g. no denied network)
                parts = () if raw.strip().lower() == "none" else raw.split(",")
                values[f.name] = tuple(p.strip() for p in parts if p.strip())
            else:
                values[f.name] = raw
        except ValueError as exc:
            raise ConfigError(f"{name}={raw!r} is not a valid {f.type}") from exc
    if values.get("role", "all") not in ROLES:
        raise ConfigError(f"SLUICE_ROLE must be one of {', '.join(ROLES)}")
    if not 0 <= values.get("profile_api_rate_limit", 0) < float("inf"):
        raise ConfigError("SLUICE_PROFILE_API_RATE_LIMIT must be 0 (no limit) or more")
    if values.get("warehouse_max_event_tables", 0) < 0:
        raise ConfigError("SLUICE_WAREHOUSE_MAX_EVENT_TABLES must be 0 or more")
    if not 0 <= values.get("batch_nice", 0) <= 19:
        raise ConfigError("SLUICE_BATCH_NICE must be 0 to 19 (as nice(1))")
    if values.get("worker_memory_limit_mb", 0) < 0:
        raise ConfigError("SLUICE_WORKER_MEMORY_LIMIT_MB must be 0 (no limit) or more")
    if values.get("ready_min_free_mb", 0) < 0:
        raise ConfigError("SLUICE_READY_MIN_FREE_MB must be 0 (not checked) or more")
    if values.get("log_level", "info").lower() not in LOG_LEVELS:
        raise ConfigError(f"SLUICE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    values["log_level"] = values.get("log_level", "info").lower()
    if values.get("log_format", "text") not in LOG_FORMATS:
        raise ConfigError(f"SLUICE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    for name in _NETWORK_FIELDS:
        for network in values.get(name, ()):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"SLUICE_{name.upper()}: {network!r} is not an IP address or network (CIDR)"
                ) from None
    for name in ("bridge_max_rss_mb", "bridge_max_line_mb"):
        if values.get(name, 1) <= 0:
            raise ConfigError(f"SLUICE_{name.upper()} must be more than 0")
    if values.get("sqlite_synchronous", "full") not in ("full", "normal"):
        raise ConfigError("SLUICE_SQLITE_SYNCHRONOUS must be 'full' or 'normal'")
    settings = Settings(**values)
    check_archive_storage(settings)
    return settings


def check_archive_storage(settings: Settings) -> None:
    """Refuse an archive storage that cannot work, naming the setting (never a secret's value)."""
    from sluice.objectstore.settings import bucket_problem, endpoint_problem

    if settings.archive_storage not in ARCHIVE_STORAGES:
        raise ConfigError(f"SLUICE_ARCHIVE_STORAGE must be one of {', '.join(ARCHIVE_STORAGES)}")
    if settings.archive_storage != "s3":
        return
    bucket = settings.archive_s3_bucket
    if not bucket:
        raise ConfigError("SLUICE_ARCHIVE_STORAGE=s3 needs SLUICE_ARCHIVE_S3_BUCKET")
    if (problem := bucket_problem(bucket)) is not None:
        raise ConfigError(f"SLUICE_ARCHIVE_S3_BUCKET={bucket!r}: {problem}")
    url = settings.archive_s3_endpoint_url
    if url is not None and (problem := endpoint_problem(url)) is not None:
        # The URL is not repeated: it may hold credentials.
        raise ConfigError(f"SLUICE_ARCHIVE_S3_ENDPOINT_URL {problem}")
    if settings.archive_s3_prefix.startswith("/"):
        raise ConfigError("SLUICE_ARCHIVE_S3_PREFIX must not start with '/'")
    key, secret = settings.archive_s3_access_key_id, settings.archive_s3_secret_access_key
    if bool(key) != bool(secret):
        raise ConfigError(
            "SLUICE_ARCHIVE_S3_ACCESS_KEY_ID and SLUICE_ARCHIVE_S3_SECRET_ACCESS_KEY go together"
            " (set both, or neither to use the AWS environment and credential chain)"
        )
