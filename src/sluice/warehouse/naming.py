"""Table and column names exactly as Segment's warehouses spell them.

Segment names every schema, table and column with `segmentio/go-snakecase`; `snakecase` is a
port of its current version, quirks included (`HTMLParser` → `htmlparser`, `iOSVersion` →
`i_osversion`), so that queries written against a Segment warehouse run unchanged. On top of it,
`Namer` makes a name a usable identifier the way Segment's Redshift loader does: reserved words
and names starting with a digit get a `_` prefix (`open` → `_open`, `101 Account Update` →
`_101_account_update`).

Two rules Segment leaves open are fixed here (and documented in docs/warehouse.md):

- A property or trait whose column would collide with a standard column of its table (`user_id`,
  `received_at`, `event`, any `context_*`, ...) is `_`-prefixed (`_user_id`), like Redshift's page
  says, instead of being discarded. An event table named like a standard table (`pages`) is too.
- Names longer than the warehouse allows are cut, deterministically and without collisions: the
  first characters, `_`, then 8 hex digits of the SHA-1 of the whole name.
"""

from __future__ import annotations

import hashlib

# PostgreSQL's reserved key words (DuckDB reserves the same ones) and Amazon Redshift's reserved
# words, lower-cased: a name in this set gets a `_` prefix.
RESERVED_WORDS = frozenset(
    """
    aes128 aes256 all allowoverwrite analyse analyze and any array as asc asymmetric
    authorization az64 backup between binary blanksasnull both bytedict bzip2 case cast check
    collate column constraint create credentials cross current_catalog current_date current_role
    current_time current_timestamp current_user current_user_id default deferrable deflate
    defrag delta delta32k desc disable distinct do else emptyasnull enable encode encrypt
    encryption end except explicit false fetch for foreign freeze from full globaldict256
    globaldict64k grant group gzip having identity ignore ilike in initially inner intersect
    interval into is isnull join language lateral leading left like limit localtime
    localtimestamp lun luns lzo lzop minus mostly16 mostly32 mostly8 natural new not notnull
    null nulls off offline offset oid old on only open or order outer overlaps parallel
    partition percent permissions pivot placing primary raw readratio recover references
    rejectlog resort respect restore returning right select session_user similar snapshot some
    symmetric sysdate system table tag tdes text255 text32k then timestamp to top trailing true
    truncatecolumns union unique unnest unpivot user using variadic verbose wallet when where
    window with without
    """.split()  # noqa: SIM905 (a word list reads better as words)
)

# Segment's own tables: an event whose table would take one of these names is `_`-prefixed.
STANDARD_TABLES = frozenset(
    {"identifies", "users", "groups", "accounts", "aliases", "pages", "screens", "tracks"}
)
HASH_DIGITS = 8


def _lower(c: str) -> bool:
    return "a" <= c <= "z"


def _upper(c: str) -> bool:
    return "A" <= c <= "Z"


def _digit(c: str) -> bool:
    return "0" <= c <= "9"


def snakecase(s: str) -> str:
    """`segmentio/go-snakecase`: ASCII letters and digits only, words joined by one `_`."""
    n = len(s)
    idx = 0
    has_lower = has_underscore = lower_since_underscore = False
    # The prefix that needs no change: lower-case letters, digits, and `_` inside them.
    while idx < n:
        c = s[idx]
        if _lower(c):
            has_lower = True
            if has_underscore:
                lower_since_underscore = True
        elif _digit(c):
            pass
        elif c == "_" and 0 < idx < n - 1 and (_lower(s[idx + 1]) or _digit(s[idx + 1])):
            has_underscore = True
            lower_since_underscore = False
        else:
            break
        idx += 1
    if idx == n:
        return s
    out = [s[:idx]]
    # Capitals right after that prefix continue its word when it has no lower-case letter
    # (`123ABC` -> `123abc`), or none since its last underscore.
    if _upper(s[idx]) and (not has_lower or (has_underscore and not lower_since_underscore)):
        idx = _word(s, idx, out)
    size = sum(map(len, out))
    while idx < n:
        if not (_lower(s[idx]) or _upper(s[idx]) or _digit(s[idx])):
            idx += 1
            continue
        if size:
            out.append("_")
        start = idx
        idx = _word(s, idx, out)
        size += idx - start
    return "".join(out)


def _word(s: str, idx: int, out: list[str]) -> int:
    """Append the word at `idx` (capitals and digits, then lower-case letters and digits)."""
    n = len(s)
    start = idx
    while idx < n and (_upper(s[idx]) or _digit(s[idx])):
        idx += 1
    out.append(s[start:idx].lower())
    start = idx
    while idx < n and (_lower(s[idx]) or _digit(s[idx])):
        idx += 1
    out.append(s[start:idx])
    return idx


def shorten(name: str, limit: int) -> str:
    """`name` when it fits, else its first characters + `_` + a hash of the whole name."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:HASH_DIGITS]
    return f"{name[: limit - HASH_DIGITS - 1]}_{digest}"


def identifier(snake: str, limit: int, protected: frozenset[str] = frozenset()) -> str:
    """A snake-cased name made a safe identifier: `_` before reserved words, leading digits and
    `protected` names (standard columns or tables), then cut to `limit` characters."""
    if snake in RESERVED_WORDS or snake in protected or (snake and _digit(snake[0])):
        snake = "_" + snake
    return shorten(snake, limit)


class Namer:
    """Names for one warehouse (one identifier limit), memoised: events repeat their keys."""

    def __init__(self, max_identifier_length: int) -> None:
        self.limit = max_identifier_length
        self._schemas: dict[str, str] = {}
        self._tables: dict[str, str] = {}

    def schema(self, source_id: str) -> str:
        name = self._schemas.get(source_id)
        if name is None:
            name = identifier(snakecase(source_id), self.limit) or "_"
            self._schemas[source_id] = name
        return name

    def event_table(self, event: str) -> str:
        """The table of a track event: `Order Completed` → `order_completed`; "" for names that
        have no ASCII letter or digit (those events only reach `tracks`)."""
        name = self._tables.get(event)
        if name is None:
            snake = snakecase(event)
            name = identifier(snake, self.limit, STANDARD_TABLES) if snake else ""
            self._tables[event] = name
        return name

    def column(self, path: str, protected: frozenset[str]) -> str:
        """The column of a flattened path (already snake-cased and joined with `_`)."""
        return identifier(path, self.limit, protected)
