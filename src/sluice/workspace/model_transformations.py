"""The workspace document's `transformations:` section: Protocols transformations
(docs/protocols.md).

Checked by `sluice.transform.validate` (called from `check_workspace`). Kept apart from the rest
of the document (`model`, whose `Workspace` holds this section): transformations are a component
of their own, read without the rest.
"""

from __future__ import annotations

from typing import Any, Literal

from sluice.workspace.model_types import DocumentStruct, Id, NonEmptyStr

TransformationType = Literal[
    "rename_event", "rename_properties", "rename_traits", "set_values", "casing"
]


class PropertyRename(DocumentStruct):
    """One property (or trait) moved: paths of up to 4 levels, `\\.` for a literal dot."""

    old: NonEmptyStr
    new: NonEmptyStr


class ValueChange(DocumentStruct):
    """Segment's propertyValueTransformations: every path given gets `value`."""

    paths: list[NonEmptyStr]
    value: Any


class CasingChange(DocumentStruct):
    """Segment's fqlDefinedProperties: `lowercase(properties.x)` written to `property`."""

    fql: NonEmptyStr
    property: NonEmptyStr


class Transformation(DocumentStruct):
    """A Protocols transformation: one source, one call (and Track event), source scope or one
    destination's (`destination`); one per (source, type, call, event, destination)."""

    id: Id
    source: Id
    type: TransformationType
    name: str | None = None
    enabled: bool = True
    destination: Id | None = None
    call: Literal["track", "identify", "group"] = "track"
    event: NonEmptyStr | None = None  # the Track event's name (track calls only)
    new_event_name: NonEmptyStr | None = None  # rename_event
    renames: list[PropertyRename] = []  # rename_properties, rename_traits
    values: list[ValueChange] = []  # set_values
    casing: CasingChange | None = None  # casing
