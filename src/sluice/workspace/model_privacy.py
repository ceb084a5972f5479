"""The workspace document's `privacy:` section: PII controls (docs/privacy-pii.md).

Checked by `sluice.pii.validate` (called from `check_workspace`). Kept apart from the rest of the
document (`model`, whose `Workspace` holds this section): PII controls are a component of their
own, read without the rest.
"""

from __future__ import annotations

from typing import Literal

from sluice.workspace.model_types import DocumentStruct, Id, NonEmptyStr

PiiClassification = Literal["red", "yellow", "green"]
PiiAction = Literal["block", "hash"]


class PiiMatcher(DocumentStruct):
    """A custom PII matcher: `terms` (the name and its synonyms, or regexes) matched against
    field keys or values, exactly, by similarity (Dice > 0.7) or as a regex."""

    name: NonEmptyStr
    classification: PiiClassification
    terms: list[NonEmptyStr]
    target: Literal["key", "value"] = "key"
    match: Literal["exact", "similar", "regex"] = "exact"


class PiiRule(DocumentStruct):
    """What happens to Red and Yellow fields for one source (at ingest) or destination."""

    red: PiiAction | None = None
    yellow: PiiAction | None = None


class PiiSettings(DocumentStruct):
    """`privacy.pii`: Segment's default matchers (on unless `defaults: false`), custom ones,
    and the rules per source and per destination."""

    defaults: bool = True
    matchers: list[PiiMatcher] = []
    sources: dict[Id, PiiRule] = {}
    destinations: dict[Id, PiiRule] = {}


class Privacy(DocumentStruct):
    """The `privacy:` section."""

    pii: PiiSettings | None = None
