"""The identity settings: limits, windows, priorities and blocked values, as Segment has them.

Defaults follow Segment's Identity Resolution settings: `user_id` at most 1 value per profile,
every other type 5; priority `user_id` 1, `email` 2, then the other types alphabetically;
Segment's suggested blocked values (zeroes and dashes, `-1`, `null`, `anonymous`) plus the junk
ids that hard-coded or stringified values produce (`undefined`, `[object Object]`, `NaN`, ...)
are on, because one such value in production glues thousands of profiles together; and a merge
that would give one profile more than 100 identifiers is refused.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from sluice.workspace.model import IdentitySettings

USERS = "users"
ACCOUNTS = "accounts"
USER_ID = "user_id"
EMAIL = "email"
DEFAULT_USER_ID_LIMIT = 1
DEFAULT_LIMIT = 5
DEFAULT_MAX_MERGE_IDENTITIES = 100
DAY_MS = 86_400_000
# Segment's built-in ranks; every type without one comes after, alphabetically.
DEFAULT_PRIORITIES = {USER_ID: 1, EMAIL: 2}
UNRANKED = 3

# Segment's suggested blocked values: "Zeroes and Dashes (^[0-]*$)", -1, null, anonymous.
SUGGESTED_PATTERNS = (r"^[0-]*$",)
SUGGESTED_VALUES = ("-1", "null", "anonymous")
# Junk ids of hard-coded defaults and stringified non-values (PostHog refuses the same list);
# compared without case, and also when wrapped in quotes.
JUNK_VALUES = (
    "undefined", "none", "nan", "nil", "guest", "[object object]", "true", "false", "id",
    "email", "distinct_id", "not_authenticated", "0", "-1", "null", "anonymous", "user_id",
    "anonymous_id", "userid", "anonymousid",
)  # fmt: skip
_QUOTES = ("'", '"', "`")


@dataclass(frozen=True, slots=True)
class TypeRule:
    limit: int
    window_ms: int | None
    rank: int


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules one space resolves identities by; immutable, built once per configuration."""

    enabled: bool = True
    types: dict[str, TypeRule] = field(default_factory=dict)
    trait_types: tuple[tuple[str, str], ...] = ()  # (trait key, id type) of custom identifiers
    blocked_values: frozenset[str] = frozenset()  # exact values
    blocked_folded: frozenset[str] = frozenset()  # compared lower-cased, quotes stripped
    blocked_patterns: tuple[re.Pattern[str], ...] = ()
    max_merge_identities: int = DEFAULT_MAX_MERGE_IDENTITIES
    fingerprint: str = ""

    def rule(self, id_type: str) -> TypeRule:
        rule = self.types.get(id_type)
        return rule if rule is not None else _default_rule(id_type)

    def priority_key(self, id_type: str) -> tuple[int, str]:
        """Sorts from the highest priority to the lowest: rank, then the type's name."""
        return (self.rule(id_type).rank, id_type)

    def is_blocked(self, value: str) -> bool:
        """Whether `value` may never be an identifier (empty and blank values never are)."""
        stripped = value.strip()
        if not stripped or value in self.blocked_values:
            return True
        if self.blocked_folded:
            folded = stripped.lower()
            while len(folded) >= 2 and folded[0] in _QUOTES and folded[-1] == folded[0]:
                folded = folded[1:-1].strip()
            if not folded or folded in self.blocked_folded:
                return True
        patterns = self.blocked_patterns
        if not patterns:
            return False
        if len(patterns) == 1:
            return patterns[0].search(value) is not None
        return any(pattern.search(value) for pattern in patterns)


@functools.lru_cache(maxsize=1024)
def _default_rule(id_type: str) -> TypeRule:
    """Segment's rule for a type the workspace does not configure (called at every event)."""
    limit = DEFAULT_USER_ID_LIMIT if id_type == USER_ID else DEFAULT_LIMIT
    return TypeRule(limit, None, DEFAULT_PRIORITIES.get(id_type, UNRANKED))


def rules_from(settings: IdentitySettings | None) -> Rules:
    """The rules of a workspace's `identity:` section (None: the defaults)."""
    settings = settings or IdentitySettings()
    types: dict[str, TypeRule] = {}
    traits: list[tuple[str, str]] = []
    for rule in settings.id_types:
        default = Rules().rule(rule.type)
        types[rule.type] = TypeRule(
            rule.limit if rule.limit is not None else default.limit,
            rule.window_days * DAY_MS if rule.window_days is not None else None,
            rule.priority if rule.priority is not None else default.rank,
        )
        if rule.trait is not None:
            traits.append((rule.trait, rule.type))
    blocked = settings.blocked
    patterns = list(SUGGESTED_PATTERNS if blocked.suggested else ()) + list(blocked.patterns)
    return Rules(
        enabled=settings.enabled,
        types=types,
        trait_types=tuple(traits),
        blocked_values=frozenset(blocked.values),
        blocked_folded=frozenset(JUNK_VALUES if blocked.suggested else ()),
        blocked_patterns=tuple(re.compile(p) for p in patterns),
        max_merge_identities=settings.max_merge_identities,
        fingerprint=fingerprint(settings),
    )


def fingerprint(settings: IdentitySettings) -> str:
    """A digest of what resolution depends on (not `enabled`): a change asks for a rebuild."""
    data = msgspec.to_builtins(settings)
    data.pop("enabled", None)
    return hashlib.sha256(msgspec.json.encode(data, order="sorted")).hexdigest()[:16]


def sorted_by_priority(rules: Rules, types: Iterable[str]) -> list[str]:
    return sorted(set(types), key=rules.priority_key)
