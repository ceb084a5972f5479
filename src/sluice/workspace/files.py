"""Reading and writing workspace files (YAML), with errors that point into the file.

YAML is parsed by a safe loader with two changes from `yaml.safe_load`: a key given twice in one
mapping is an error (PyYAML keeps the last one silently, which hides typos), and dates stay
strings (the document is stored as JSON, which has no date type). msgspec then checks the shape;
its messages ("... - at `$.sources[1].write_keys`") are turned into `WorkspaceError`s with the
same path written the way the user reads it: `sources[1].write_keys`.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Destination, Source, TrackingPlan, Warehouse, Workspace
from sluice.workspace.model_checks import check_workspace
from sluice.workspace.model_transformations import Transformation
from sluice.workspace.model_types import PATTERN_HELP

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader`, refusing duplicate keys and leaving dates as strings."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # keys merged in with `<<` may be overridden: that is their point
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as people write YAML by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def load_workspace_file(path: Path) -> Workspace:
    """Read and check a workspace file; errors name `path` as the user gave it."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WorkspaceError("Not a UTF-8 text file", file=file) from None
    except OSError as exc:
        raise WorkspaceError(f"Cannot read the file: {exc.strerror or exc}", file=file) from None
    return parse_workspace(text, file)


def parse_workspace(text: str, file: str | None) -> Workspace:
    """Parse and check a workspace document; `file` is only used in error messages."""
    try:
        data = yaml.load(text, Loader=_Loader)  # safe: _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, file) from None
    except yaml.YAMLError as exc:
        raise WorkspaceError(f"Invalid YAML: {exc}", file=file) from None
    if data is None:
        raise WorkspaceError(
            "The document is empty (write `sources: []` to mean a workspace with nothing in it)",
            file=file,
        )
    return workspace_from_data(data, file)


def workspace_from_data(data: object, file: str | None) -> Workspace:
    """Check an already decoded document (YAML or JSON) the way `parse_workspace` does.

    The admin API receives JSON; sharing this step keeps one set of rules and error messages.
    """
    try:
        ws = msgspec.convert(data, Workspace)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc), file) from None
    try:
        check_workspace(ws)
    except WorkspaceError as exc:
        raise exc.in_file(file) from None
    return ws


def dump_workspace(ws: Workspace) -> str:
    """The document as YAML: the name, then sources, destinations, warehouses, tracking plans.

    Fields left at their default are omitted inside objects, but every top-level key is written
    so that the file shows all it may hold.
    """
    return yaml.dump(
        workspace_data(ws),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )


def workspace_data(ws: Workspace) -> dict[str, Any]:
    """The document as plain data, every top-level key present: what `dump_workspace` writes,
    and what the admin API returns as JSON."""
    return {
        field.name: msgspec.to_builtins(getattr(ws, field.name))
        for field in msgspec.structs.fields(Workspace)
        # `identity:` and `privacy:` absent mean their defaults: written only when the workspace
        # sets them; the engage lists and `transformations:` only when not empty.
        if not (field.name in ("identity", "privacy") and getattr(ws, field.name) is None)
        and not (
            field.name in ("computed_traits", "audiences", "transformations")
            and not getattr(ws, field.name)
        )
    }


def _yaml_error(exc: yaml.MarkedYAMLError, file: str | None) -> WorkspaceError:
    mark = exc.problem_mark or exc.context_mark
    path = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    message = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        message = f"{exc.problem} ({exc.context})"
    return WorkspaceError(f"Invalid YAML: {message}", path=path, file=file)


_MSGSPEC_ERROR = re.compile(r"(?P<message>.*?)(?: - at `(?P<at>.*)`)?", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<field>.*)`", re.DOTALL)
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<field>.*)`", re.DOTALL)
_PATTERN = re.compile(r"Expected `str` matching regex (?P<pattern>'.*')", re.DOTALL)
# msgspec quotes the pattern with `repr`.
_HELP_BY_PATTERN = {repr(pattern): text for pattern, text in PATTERN_HELP.items()}
_ITEM_TYPES: dict[str, type[msgspec.Struct]] = {
    "sources": Source,
    "destinations": Destination,
    "warehouses": Warehouse,
    "tracking_plans": TrackingPlan,
    "transformations": Transformation,
}


def _validation_error(text: str, file: str | None) -> WorkspaceError:
    """Rewrite one of msgspec's validation messages into a `WorkspaceError`."""
    match = _MSGSPEC_ERROR.fullmatch(text)
    assert match is not None  # the pattern matches any text
    message, at = match["message"], match["at"] or "$"
    if at.startswith("key` in `"):
        at = at.removeprefix("key` in `")
        message = f"{message} in a key (quote the key)"
    path = at.removeprefix("$").removeprefix(".")
    if unknown := _UNKNOWN_FIELD.fullmatch(message):
        return WorkspaceError(
            _unknown_field_message(path, unknown["field"]),
            path=_join(path, unknown["field"]),
            file=file,
        )
    if missing := _MISSING_FIELD.fullmatch(message):
        return WorkspaceError(
            "Missing required field", path=_join(path, missing["field"]), file=file
        )
    if message.startswith("Invalid enum value") and (choices := _choices(path)):
        message = f"{message}, expected one of: {', '.join(choices)}"
    if (pattern := _PATTERN.fullmatch(message)) and pattern["pattern"] in _HELP_BY_PATTERN:
        message = _HELP_BY_PATTERN[pattern["pattern"]]
    return WorkspaceError(message.replace("`", ""), path=path, file=file)


def _unknown_field_message(path: str, field: str) -> str:
    """Name the fields allowed where the unknown one was found, and the likely intended one."""
    kind = re.sub(r"\[\d+\]\Z", "", path)
    struct = Workspace if path == "" else _ITEM_TYPES.get(kind)
    if struct is None:
        return "Unknown field"
    allowed = [f.name for f in msgspec.structs.fields(struct)]
    close = difflib.get_close_matches(field, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"Unknown field ({hint}expected one of: {', '.join(allowed)})"


def _choices(path: str) -> list[str]:
    """The values a `Literal` field at `path` (like `warehouses[0].type`) allows."""
    kind, _, field = re.sub(r"\[\d+\]", "", path).partition(".")
    struct = _ITEM_TYPES.get(kind)
    if struct is None:
        return []
    hint = typing.get_type_hints(struct).get(field)
    return [str(v) for v in typing.get_args(hint)] if typing.get_origin(hint) is Literal else []


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field
