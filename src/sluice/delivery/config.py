"""A destination's configuration, compiled: the instance, routing rules, filters and mappings.

The workspace stores each destination as a document (see workspace/model.py). The delivery worker
compiles it once per config version: settings are checked against the destination's `Settings`
Struct, filters and triggers are compiled to predicates, mappings to evaluators. With no
mappings configured, the destination's presets apply, so a user who adds a destination without
writing mappings gets what Segment would send.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import msgspec

from sluice.bridge.checks import mapping_error
from sluice.bridge.destination import BridgedDestination
from sluice.delivery.filters import Filter, parse_filters
from sluice.delivery.policy import DEFAULT_RETRY_WINDOW_S, RetryPolicy
from sluice.destinations.base import Action, Destination, DestinationSettings
from sluice.destinations.registry import load
from sluice.errors import SluiceError
from sluice.fql import compile_trigger
from sluice.mapping import compile as compile_mapping
from sluice.mapping import validate as validate_mapping

DEFAULT_CONCURRENCY = 32
DEFAULT_CHUNK_EVENTS = 2000
DEFAULT_MAX_RETRYING = 100_000
ORDERINGS = ("none", "per_user")
MAX_PARTITIONS = 64


class DestinationConfigError(SluiceError):
    """A destination's configuration cannot be used; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class MappingDoc(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One configured mapping: which action, when (trigger), and how (field mappings)."""

    action: str
    name: str | None = None
    trigger: str | None = None
    mapping: dict[str, Any] | None = None
    enabled: bool = True


class DeliveryOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    concurrency: int = msgspec.field(default=DEFAULT_CONCURRENCY)
    batch_size: int | None = None  # at most the action's own limit
    max_wait_ms: int = 0  # wait this long for a fuller batch
    requests_per_s: float = 0.0  # 0 = unlimited
    timeout_s: float | None = None  # default: the destination's
    retry_window_s: float = DEFAULT_RETRY_WINDOW_S
    # Consumers sharing the destination by user hash, each claimed by a worker of its own.
    partitions: int = 1
    # "none" (Segment's): a failed event is retried on its own while later ones flow. "per_user":
    # a user's later events wait behind that user's retrying event (RudderStack's barrier).
    ordering: str = "none"
    # Events in the retry set at most; past it the cursor pauses (`sluice status` says so).
    max_retrying: int = DEFAULT_MAX_RETRYING
    # Segment's destinations (segment:<slug>) only: every request their code makes goes to this
    # base URL instead of the API's (path and query kept): an egress proxy, or a test server.
    # Native destinations take `settings.endpoint`.
    base_url: str | None = None


class DestinationDoc(msgspec.Struct, kw_only=True):
    """The fields of the workspace's destination document the worker needs."""

    id: str
    type: str
    name: str | None = None
    mode: str = "cloud"
    enabled: bool = True
    sources: list[str] = []
    settings: dict[str, Any] = {}
    filters: list[dict[str, Any]] = []
    mappings: list[dict[str, Any]] = []
    consent_categories: list[str] = []
    delivery: dict[str, Any] = {}


Predicate = Callable[[Mapping[str, Any]], bool]
Evaluate = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    name: str
    action: Action
    trigger: Predicate
    evaluate: Evaluate  # output may share objects with the event (no copies)
    evaluate_copy: Evaluate  # output owns its objects


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    id: str
    type: str
    names: tuple[str, ...]  # display names the `integrations` object may use
    enabled: bool
    sources: frozenset[str]
    destination: Destination
    filters: Sequence[Filter]
    mappings: Sequence[CompiledMapping]
    consent_categories: tuple[str, ...]
    options: DeliveryOptions
    retry: RetryPolicy
    # Destination-scoped transformations and PII rule (transform/stages.py), after filters.
    stage: Callable[[dict[str, Any], str], None] | None = None

    @property
    def timeout_s(self) -> float:
        return self.options.timeout_s or self.destination.timeout_s


def _convert(value: Any, type_: type[Any], path: str) -> Any:
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, where = text.partition(" - at `$")
        _raise((path + where.rstrip("`")).lstrip("."), message)


def _raise(path: str, message: str) -> NoReturn:
    raise DestinationConfigError(path, message)


def _compile_mapping(
    cls: type[Destination], doc: MappingDoc, path: str, compile_one: CompileOne
) -> CompiledMapping:
    """A configured mapping; missing trigger or fields come from the action's first preset."""
    action = cls.actions.get(doc.action)
    if action is None:
        _raise(f"{path}.action", f"unknown action {doc.action!r} (known: {sorted(cls.actions)})")
    preset = next((p for p in cls.presets if p.action == doc.action), None)
    trigger = doc.trigger or (preset.trigger if preset else None)
    if not trigger:
        _raise(f"{path}.trigger", "a trigger is required (this action has no preset)")
    mapping = doc.mapping if doc.mapping is not None else (preset.mapping if preset else None)
    if mapping is None:
        _raise(f"{path}.mapping", "a mapping is required (this action has no preset)")
    name = doc.name or (preset.name if preset else doc.action)
    return compile_one(action, name, trigger, mapping, path)


def _settings(cls: type[Destination], raw: dict[str, Any]) -> DestinationSettings:
    """The destination's own check of its settings, its error naming the field."""
    try:
        return cls.parse_settings(raw)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        _raise(("settings" + where.rstrip("`")).rstrip("."), message)


def _compiled_for(
    destination: Destination,
    action: Action,
    name: str,
    trigger: str,
    mapping: Mapping[str, Any],
    path: str,
) -> CompiledMapping:
    """A native destination's mapping is evaluated here; a bridged one's (Segment's code runs
    it) is checked against the action's fields and travels with the event instead."""
    if not isinstance(destination, BridgedDestination):
        return _compiled(action, name, trigger, mapping, path)
    problem = mapping_error(destination.entry, action.id, mapping)
    if problem is not None:
        _raise(f"{path}.mapping", problem)
    try:
        predicate = compile_trigger(trigger)
    except SluiceError as exc:
        _raise(f"{path}.trigger", str(exc))
    try:  # Segment's mapping kit runs it, @liquid included: checked as Segment checks it
        validate_mapping(mapping, liquid=True)
    except SluiceError as exc:
        _raise(f"{path}.mapping", str(exc))
    index = destination.subscribe(action.id, trigger, mapping)

    def subscribed(event: Mapping[str, Any]) -> Any:
        return {"subscription": index, "event": event}

    return CompiledMapping(name, action, predicate, subscribed, subscribed)


CompileOne = Callable[[Action, str, str, Mapping[str, Any], str], CompiledMapping]


def _compiled(
    action: Action, name: str, trigger: str, mapping: Mapping[str, Any], path: str
) -> CompiledMapping:
    try:
        predicate = compile_trigger(trigger)
    except SluiceError as exc:
        _raise(f"{path}.trigger", str(exc))
    try:
        evaluate = compile_mapping(mapping, copy=False)
        evaluate_copy = compile_mapping(mapping)
    except SluiceError as exc:
        _raise(f"{path}.mapping", str(exc))
    return CompiledMapping(name, action, predicate, evaluate, evaluate_copy)


def compile_destination(
    body: bytes | Mapping[str, Any], stage: Callable[[dict[str, Any], str], None] | None = None
) -> DestinationConfig:
    """Compile one destination document; raises DestinationConfigError naming the field.
    `stage`: its transformations and PII rule (transform/stages.py `destination_stages`)."""
    raw = msgspec.json.decode(body) if isinstance(body, bytes) else dict(body)
    doc: DestinationDoc = _convert(raw, DestinationDoc, "")
    if doc.mode == "device":
        _raise("mode", "a device-mode destination runs in the page: Sluice does not deliver it")
    try:
        cls = load(doc.type)
    except SluiceError as exc:
        _raise("type", str(exc))
    settings = _settings(cls, doc.settings)
    options: DeliveryOptions = _convert(doc.delivery, DeliveryOptions, "delivery")
    bridged = isinstance(cls, type) and issubclass(cls, BridgedDestination)
    if options.base_url is not None and not bridged:
        _raise("delivery.base_url", "only Segment's destinations take it: use settings.endpoint")
    if options.base_url is not None and not options.base_url.startswith(("http://", "https://")):
        _raise("delivery.base_url", f"{options.base_url!r} is not an http(s) URL")
    if options.concurrency < 1:
        _raise("delivery.concurrency", "must be at least 1")
    if options.ordering not in ORDERINGS:
        _raise("delivery.ordering", f"must be one of {', '.join(ORDERINGS)}")
    if options.max_retrying < 1:
        _raise("delivery.max_retrying", "must be at least 1")
    if not 1 <= options.partitions <= MAX_PARTITIONS:
        _raise("delivery.partitions", f"must be between 1 and {MAX_PARTITIONS}")
    try:
        filters = parse_filters(doc.filters)
    except SluiceError as exc:
        _raise("filters", str(exc))
    destination = cls(settings)
    compile_one = functools.partial(_compiled_for, destination)
    if doc.mappings:
        mappings = [
            _compile_mapping(cls, _convert(m, MappingDoc, f"mappings[{i}]"), f"mappings[{i}]",
                             compile_one)
            for i, m in enumerate(doc.mappings)
        ]  # fmt: skip
        mappings = [
            m for m, d in zip(mappings, doc.mappings, strict=True) if d.get("enabled", True)
        ]
    else:
        mappings = [
            compile_one(cls.actions[p.action], p.name, p.trigger, p.mapping, f"presets[{i}]")
            for i, p in enumerate(cls.presets)
        ]
    if isinstance(destination, BridgedDestination):
        destination.base_url = options.base_url
    names = tuple(dict.fromkeys((cls.name, *cls.aliases, *([doc.name] if doc.name else []))))
    return DestinationConfig(
        id=doc.id,
        type=doc.type,
        names=names,
        enabled=doc.enabled,
        sources=frozenset(doc.sources),
        destination=destination,
        filters=filters,
        mappings=mappings,
        consent_categories=tuple(doc.consent_categories),
        options=options,
        retry=RetryPolicy(max_age_s=options.retry_window_s),
        stage=stage,
    )
