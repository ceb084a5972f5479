"""Segment destination filters: decide, for one event, whether a destination gets it and how.

A destination has up to ten filters. Each has an FQL condition (`if`, or "all") and actions:
sample, drop, drop_properties, allow_properties. Segment applies them in that order across
all the filters, whatever order they are listed in: first every sample, then every drop, then
property drops, then property allow-lists. We do the same, as a pure function of the event and
the configuration, so `sluice trace` can explain any past decision:

- a condition is evaluated once, on the event as received (before properties are removed);
- sampling hashes a field (or the messageId), never a random number;
- a condition that does not compile is refused where configuration comes in (`sluice apply`,
  the admin API and the UI check with `strict=True`); a stored filter that predates that check
  is kept, and while enabled drops every event (fail-closed, as Segment does, so a broken filter
  never leaks what it was meant to remove). `filter_errors` says which, for logs and status.

Events are never mutated: a filter that removes properties returns a new dict that shares every
part it did not change.

Tree:
    SluiceError
    └── FilterError   a filter document is malformed (names the filter's index and field)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, NamedTuple

import msgspec

from sluice.delivery.filter_edits import (
    Edit,
    FieldPath,
    FieldTree,
    edit_at,
    field_dropper,
    field_pruner,
)
from sluice.errors import SluiceError
from sluice.fql import FqlError, Predicate, compile_filter, path_getter

MAX_FILTERS: Final = 10
MAX_TITLE_LENGTH: Final = 64
ACTION_TYPES: Final = ("sample", "drop", "drop_properties", "allow_properties")

Event = dict[str, Any]
FieldName = Annotated[str, msgspec.Meta(min_length=1)]


class FilterError(SluiceError):
    """Filter number `index` (0-based; None for the list itself) is invalid at `field`."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None):
        self.message = message
        self.index = index
        self.field = field
        where = "" if index is None else f"filter #{index}"
        if field:
            where += f", field {field}" if where else f"field {field}"
        super().__init__(f"{where}: {message}" if where else message)


# The document, as written in a workspace (Segment's public-API shape).


class _Action(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True):
    pass


class DropAction(_Action, tag="drop", frozen=True):
    """Do not send matching events."""


class SampleAction(_Action, tag="sample", frozen=True, kw_only=True):
    """Send only `percent` (0 to 1) of matching events, chosen by a hash of `path`."""

    percent: Annotated[float, msgspec.Meta(ge=0, le=1)]
    path: FieldName | None = None


class DropPropertiesAction(_Action, tag="drop_properties", frozen=True, kw_only=True):
    """Remove fields: `{"properties": ["email"], "": ["userId"]}` ("" is the top level)."""

    fields: dict[str, list[FieldName]]


class AllowPropertiesAction(_Action, tag="allow_properties", frozen=True, kw_only=True):
    """Keep only the listed fields of each listed object."""

    fields: dict[str, list[FieldName]]


Action = DropAction | SampleAction | DropPropertiesAction | AllowPropertiesAction


class FilterDoc(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_LENGTH)]
    condition: str = msgspec.field(name="if")
    actions: Annotated[list[Action], msgspec.Meta(min_length=1)]
    description: str | None = None
    enabled: bool = True
    # Carried by documents copied from Segment's API; identify the filter there, unused here.
    id: str | None = None
    source_id: str | None = None
    destination_id: str | None = None


# The compiled filter.


class FilterResult(NamedTuple):
    """The event to send (None when dropped) and, when dropped, why: `filter:<title>`,
    `sample:<title>` or `invalid_filter:<title>`."""

    event: Event | None
    reason: str | None


def _never(event: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Filter:
    """One filter, ready to apply. `error` says why its condition did not compile (the filter
    then drops every event while enabled)."""

    title: str
    condition: str
    actions: tuple[Action, ...]
    enabled: bool = True
    description: str | None = None
    error: str | None = None
    predicate: Predicate = field(default=_never, repr=False, compare=False)
    samples: tuple[tuple[float, Callable[[Event], Any] | None], ...] = field(
        default=(), repr=False, compare=False
    )
    drops: bool = field(default=False, repr=False, compare=False)
    strip: Edit | None = field(default=None, repr=False, compare=False)
    keep: tuple[Edit, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def compile(
        cls,
        title: str,
        condition: str,
        actions: Sequence[Action],
        *,
        enabled: bool = True,
        description: str | None = None,
    ) -> Filter:
        """Compile the condition and index the actions by phase."""
        try:
            predicate, error = compile_filter(condition), None
        except FqlError as exc:
            predicate, error = _never, str(exc)
        samples: list[tuple[float, Callable[[Event], Any] | None]] = []
        drop_paths: list[str] = []
        keep: list[Edit] = []
        for action in actions:
            if isinstance(action, SampleAction):
                getter = path_getter(_split(action.path)) if action.path else None
                samples.append((action.percent, getter))
            elif isinstance(action, DropPropertiesAction):
                for key, names in action.fields.items():
                    drop_paths.extend(f"{key}.{name}" if key else name for name in names)
            elif isinstance(action, AllowPropertiesAction):
                keep.extend(
                    edit_at(_split(key), field_pruner(_tree(names)))
                    for key, names in action.fields.items()
                )
        return cls(
            title=title,
            condition=condition,
            actions=tuple(actions),
            enabled=enabled,
            description=description,
            error=error,
            predicate=predicate,
            samples=tuple(samples),
            drops=any(isinstance(action, DropAction) for action in actions),
            strip=field_dropper(_tree(drop_paths)) if drop_paths else None,
            keep=tuple(keep),
        )


def parse_filters(raw: Sequence[Mapping[str, Any]], *, strict: bool = False) -> list[Filter]:
    """Check and compile a destination's filter documents.

    A structural problem raises FilterError naming the filter and field. With `strict` (new
    configuration), so does a condition that is not valid FQL (field `if`), enabled or not, as
    a mapping's trigger does. Without it (a stored configuration, which may predate the check),
    such a filter is kept with `error` set and drops every event while enabled.
    """
    if len(raw) > MAX_FILTERS:
        message = f"a destination has at most {MAX_FILTERS} filters, got {len(raw)}"
        raise FilterError(message, index=MAX_FILTERS)
    filters = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise FilterError("a filter is an object", index=index)
        doc = _convert(_normalise(item), index)
        for a, action in enumerate(doc.actions):
            if isinstance(action, DropPropertiesAction | AllowPropertiesAction):
                _check_paths(action, index, f"actions[{a}].fields")
        flt = Filter.compile(
            doc.title, doc.condition, doc.actions, enabled=doc.enabled, description=doc.description
        )
        if strict and flt.error is not None:
            raise FilterError(flt.error, index=index, field="if")
        filters.append(flt)
    return filters


def filter_errors(filters: Sequence[Filter]) -> list[str]:
    """What is wrong with each enabled filter whose condition does not compile (each of them
    drops every event): `filter #0 'No PII', field if: <FQL error>`, for logs and status."""
    return [
        f"filter #{index} {flt.title!r}, field if: {flt.error}"
        for index, flt in enumerate(filters)
        if flt.enabled and flt.error is not None
    ]


def apply_filters(filters: Sequence[Filter], event: Event) -> FilterResult:
    """Apply Segment's filter order to `event`: sample, drop, drop_properties, allow_properties."""
    hits = []
    for flt in filters:
        if not flt.enabled:
            continue
        if flt.error is not None:
            return FilterResult(None, f"invalid_filter:{flt.title}")
        if flt.predicate(event):
            hits.append(flt)
    if not hits:
        return FilterResult(event, None)
    for flt in hits:
        for percent, getter in flt.samples:
            if not _sampled(event, percent, getter):
                return FilterResult(None, f"sample:{flt.title}")
    for flt in hits:
        if flt.drops:
            return FilterResult(None, f"filter:{flt.title}")
    result: Any = event
    for flt in hits:
        if flt.strip is not None:
            result = flt.strip(result)
    for flt in hits:
        for edit in flt.keep:
            result = edit(result)
    return FilterResult(result, None)


def sample_fraction(value: Any) -> float:
    """A fraction in [0, 1) that is a pure function of `value`.

    Like Segment's sampler: the MD5 of the value's JSON, first 8 bytes read big-endian (we keep
    the top 53 bits, which is what a float holds).
    """
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        value = int(value)  # JSON.stringify(5.0) is "5"
    digest = hashlib.md5(msgspec.json.encode(value), usedforsecurity=False).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) * 2.0**-53


def _sampled(event: Event, percent: float, getter: Callable[[Event], Any] | None) -> bool:
    if percent <= 0:
        return False
    if percent >= 1:
        return True
    if getter is not None:
        value = getter(event)
    else:
        value = event.get("messageId")
        if value is None:  # no messageId (not from the collector): the whole event decides
            value = event
    return sample_fraction(value) < percent


# Reading the document.


def _split(path: str) -> FieldPath:
    return tuple(path.split(".")) if path else ()


def _tree(paths: Sequence[str]) -> FieldTree:
    """Dotted paths as a tree; a path ending at a key covers everything below that key."""
    tree: FieldTree = {}
    for path in paths:
        node = tree
        *parents, last = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if child is None:  # an ancestor is already covered whole
                break
            node = child
        else:
            node[last] = None
    return tree


def _check_paths(action: DropPropertiesAction | AllowPropertiesAction, index: int, at: str) -> None:
    for key, names in action.fields.items():
        for name in (key, *names) if key else names:
            if "" in name.split("."):
                message = f"{name!r} has an empty segment (two dots, or a leading or trailing dot)"
                raise FilterError(message, index=index, field=f"{at}.{key}")


def _normalise(item: Mapping[str, Any]) -> dict[str, Any]:
    """Accept action types in any case ("DROP", "Drop_Properties"), as Segment's API does."""
    doc = dict(item)
    actions = doc.get("actions")
    if isinstance(actions, list):
        doc["actions"] = [
            {**action, "type": action["type"].lower()}
            if isinstance(action, Mapping) and isinstance(action.get("type"), str)
            else action
            for action in actions
        ]
    return doc


_WHERE: Final = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED: Final = re.compile(r"(?:missing required|contains unknown) field `(?P<name>[^`]*)`")


def _convert(item: dict[str, Any], index: int) -> FilterDoc:
    try:
        return msgspec.convert(item, FilterDoc)
    except msgspec.ValidationError as exc:
        found = _WHERE.match(str(exc))
        message = found.group("message") if found else str(exc)
        path = (found.group("path") if found else None) or ""
        named = _NAMED.search(message)
        if named:
            path = f"{path}.{named.group('name')}" if path else named.group("name")
        if path.endswith(".type") and message.startswith("Invalid value"):
            message = f"{message}; expected one of {', '.join(ACTION_TYPES)}"
        raise FilterError(message, index=index, field=path or None) from None
