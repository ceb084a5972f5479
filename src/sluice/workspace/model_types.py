"""What every Struct of the workspace document is built from: the strict base Struct, and the
field types with a pattern (ids, write keys, identifier types) and each pattern's help text.

Apart from the document itself (`model`) because every section of it (`model_engage`,
`model_transformations`, `model_privacy`) needs them, and the document needs those sections.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# `\Z`, not `$`: `$` also matches before a trailing newline.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}\Z"
WRITE_KEY_PATTERN = r"^[A-Za-z0-9_-]{8,128}\Z"
# An identifier type as Segment names them: lower case, dots for platforms (`ios.idfa`).
ID_TYPE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}\Z"
# What each pattern means, for error messages a person can act on.
PATTERN_HELP = {
    ID_PATTERN: "Expected an id: 1 to 64 characters of a-z, 0-9, '_' and '-', "
    "starting with a letter or digit",
    WRITE_KEY_PATTERN: "Expected a write key: 8 to 128 characters of A-Z, a-z, 0-9, '_' and '-'",
    ID_TYPE_PATTERN: "Expected an identifier type: 1 to 64 characters of a-z, 0-9, '_', '.'"
    " and '-'",
}

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
WriteKey = Annotated[str, msgspec.Meta(pattern=WRITE_KEY_PATTERN)]
IdType = Annotated[str, msgspec.Meta(pattern=ID_TYPE_PATTERN)]
NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
FreeForm = dict[str, Any]


class DocumentStruct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every document Struct: keyword-only, strict about unknown keys, terse when dumped."""
