"""The workspace document's Engage sections: computed traits and audiences (docs/engage.md).

Checked by `sluice.engage.definitions` (called from `check_workspace`). Kept apart from the rest
of the document (`model`, whose `Workspace` holds these sections): Engage is a component of its
own, read without the rest.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from sluice.workspace.model_types import DocumentStruct, Id, NonEmptyStr

ComputedKind = Literal[
    "count", "sum", "avg", "min", "max", "most_frequent", "first", "last", "unique_list",
    "unique_count",
]  # fmt: skip
CompareOp = Literal["=", "!=", ">", ">=", "<", "<=", "exists", "not_exists"]
# The internal source engage's events are appended under: destinations list it in `sources:`.
ENGAGE_SOURCE_ID = "sluice-engage"


class ComputedTrait(DocumentStruct):
    """A value computed per profile from its events: `kind` over the events named `event`
    (all events when absent) matching `where` (FQL), of `property` (`properties.<property>`;
    needed by every kind but count), in the last `within_days` days when set."""

    key: Id
    kind: ComputedKind
    event: NonEmptyStr | None = None
    where: NonEmptyStr | None = None
    property: NonEmptyStr | None = None
    within_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    # Sent as an identify with the trait, or as Segment's "Trait Computed" track.
    send_as: Literal["identify", "track"] = "identify"


class TraitCondition(DocumentStruct):
    """A profile trait (from identify/context.traits) compared with a value."""

    trait: NonEmptyStr
    op: CompareOp = "="
    value: Any = None


class ComputedCondition(DocumentStruct):
    """A computed trait's value compared with a value."""

    computed_trait: Id
    op: CompareOp = "="
    value: Any = None


class EventCondition(DocumentStruct):
    """Performed `event` (matching `where`) `op` `count` times, in the last `within_days` days."""

    event: NonEmptyStr | None = None
    where: NonEmptyStr | None = None
    op: Literal["=", "!=", ">", ">=", "<", "<="] = ">="
    count: Annotated[int, msgspec.Meta(ge=0)] = 1
    within_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class AudienceCondition(DocumentStruct):
    """All (`match: all`) or any of its conditions, groups nesting further conditions."""

    match: Literal["all", "any"] = "all"
    traits: list[TraitCondition] = []
    computed_traits: list[ComputedCondition] = []
    events: list[EventCondition] = []
    groups: list[AudienceCondition] = []


class Audience(DocumentStruct):
    """Profiles for which `condition` holds; entering and leaving are sent as events."""

    key: Id
    condition: AudienceCondition
    name: NonEmptyStr | None = None
    enabled: bool = True
