"""Classifying one field as Red, Yellow or Green (or nothing): custom matchers first (the
workspace's word wins over the defaults, so a custom Green matcher clears a default one), then
Segment's defaults. A key's classification and its value's combine to the stricter.

Keys repeat from event to event, so a key's verdict is cached (bounded: hostile input may send
endless distinct keys); values are tested with cheap length and first-character checks before
any pattern runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sluice.pii.defaults import (
    GREEN,
    KEY_MATCHERS,
    NAME_KEYS,
    NAME_MATCHER,
    RED,
    YELLOW,
    default_value_match,
)

SIMILARITY = 0.7  # Segment: a Dice coefficient above this is a match
MAX_CACHED_KEYS = 10_000
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s_.\-/:]+")
STRICTNESS = {RED: 2, YELLOW: 1, GREEN: 0}

Verdict = tuple[str, str]  # (matcher name, classification)


def normalize_key(key: str) -> str:
    """`billingAddress`, `billing_address`, `Billing-Address` -> "billing address"."""
    spaced = _SEPARATORS.sub(" ", _CAMEL.sub(" ", key))
    return " ".join(spaced.lower().split())


def bigrams(text: str) -> list[str]:
    return [text[i : i + 2] for i in range(len(text) - 1)]


def dice(a: str, b: str) -> float:
    """Sørensen-Dice coefficient of the two strings' letter pairs (as Segment's godice)."""
    if a == b:
        return 1.0
    x, y = bigrams(a), bigrams(b)
    if not x or not y:
        return 0.0
    pool: dict[str, int] = {}
    for pair in x:
        pool[pair] = pool.get(pair, 0) + 1
    shared = 0
    for pair in y:
        if pool.get(pair, 0) > 0:
            pool[pair] -= 1
            shared += 1
    return 2.0 * shared / (len(x) + len(y))


@dataclass(frozen=True, slots=True)
class CustomMatcher:
    """A compiled custom matcher: `terms` normalised (key, exact/similar), lower-cased
    (value, exact/similar) or compiled (regex)."""

    name: str
    classification: str
    target: str  # "key" | "value"
    match: str  # "exact" | "similar" | "regex"
    terms: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def build(cls, name: str, classification: str, target: str, match: str,
              terms: Sequence[str]) -> CustomMatcher:  # fmt: skip
        """Raises re.error for a regex term that does not compile."""
        patterns = tuple(re.compile(t) for t in terms) if match == "regex" else ()
        if match == "regex":
            norm: tuple[str, ...] = tuple(terms)
        elif target == "key":
            norm = tuple(normalize_key(t) for t in terms)
        else:
            norm = tuple(t.lower() for t in terms)
        return cls(name, classification, target, match, norm, patterns)

    def test(self, text: str, normalised: str) -> bool:
        """`text` as sent; `normalised`: the key's words, or the value in lower case."""
        if self.match == "regex":
            return any(p.search(text) for p in self.patterns)
        if self.match == "exact":
            return normalised in self.terms
        squeezed = normalised.replace(" ", "")
        return any(dice(squeezed, t.replace(" ", "")) > SIMILARITY for t in self.terms)


def _default_key_pattern() -> re.Pattern[str]:
    alternatives = []
    for index, (_, (_, terms)) in enumerate(KEY_MATCHERS.items()):
        words = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
        alternatives.append(f"(?P<m{index}>{words})")
    return re.compile(r"(?:^| )(?:" + "|".join(alternatives) + r")(?= |$)")


_DEFAULT_KEYS = _default_key_pattern()
_MATCHER_NAMES = list(KEY_MATCHERS)


def default_key_match(normalised: str) -> Verdict | None:
    """Segment's default key matchers: the strictest whose words the key contains."""
    if normalised in NAME_KEYS:
        return NAME_MATCHER
    best: Verdict | None = None
    for m in _DEFAULT_KEYS.finditer(normalised):
        name = _MATCHER_NAMES[int((m.lastgroup or "m0")[1:])]
        verdict = (name, KEY_MATCHERS[name][0])
        if best is None or STRICTNESS[verdict[1]] > STRICTNESS[best[1]]:
            best = verdict
    return best


class Classifier:
    """Defaults (unless turned off) and custom matchers, ready for many events.

    Custom value matchers matching exactly are one dict lookup, tried before the others."""

    def __init__(self, custom: Sequence[CustomMatcher], defaults: bool = True) -> None:
        self.defaults = defaults
        self.key_matchers = [m for m in custom if m.target == "key"]
        values = [m for m in custom if m.target == "value"]
        self.exact_values: dict[str, Verdict] = {}
        for m in values:
            if m.match == "exact":
                for term in m.terms:
                    self.exact_values.setdefault(term, (m.name, m.classification))
        self.value_matchers = [m for m in values if m.match != "exact"]
        self.keys: dict[str, Verdict | None] = {}  # the cache `key` fills
        # Values found to be nothing, cached (bounded) since values like "pro" or "EUR" repeat
        # from event to event; a value some matcher classifies is never kept here.
        self.plain_values: set[str] = set()

    def key(self, key: str) -> Verdict | None:
        """The verdict on a field's key (cached)."""
        cached = self.keys.get(key, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        normalised = normalize_key(key)
        verdict: Verdict | None = None
        for m in self.key_matchers:
            if m.test(key, normalised):
                verdict = (m.name, m.classification)
                break
        if verdict is None and self.defaults:
            verdict = default_key_match(normalised)
        if len(self.keys) >= MAX_CACHED_KEYS:
            self.keys.clear()
        self.keys[key] = verdict
        return verdict

    def value(self, value: str) -> Verdict | None:
        """The verdict on a string value."""
        plain = self.plain_values
        if value in plain:
            return None
        verdict = self._value(value)
        if verdict is None:
            if len(plain) >= MAX_CACHED_KEYS:
                plain.clear()
            plain.add(value)
        return verdict

    def _value(self, value: str) -> Verdict | None:
        if self.exact_values or self.value_matchers:
            lowered = value.lower()
            found = self.exact_values.get(lowered)
            if found is not None:
                return found
            for m in self.value_matchers:
                if m.test(value, lowered):
                    return (m.name, m.classification)
        if self.defaults:
            return default_value_match(value)
        return None
