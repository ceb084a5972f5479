"""A PII rule applied to one decoded event: every field of `context`, `traits` and `properties`
(at any depth, list items included) classified, and a Red or Yellow one removed (`block`) or
replaced by the SHA-256 of its value in hex (`hash`: a string's UTF-8 bytes, any other value's
JSON text; an object's or list's values one by one, so its shape stays; null stays null).

A field whose key is classified is acted on whole; otherwise a string value may be classified by
its shape. A list item is removed or hashed on its own. The Spec's technical objects of
`context` (library, app, os, campaign, page, screen, network, consent, protocols, user agent
data) are not scanned: `context.library.name` is a library's name, not a person's.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from sluice.pii.classify import STRICTNESS, Classifier
from sluice.pii.defaults import GREEN, RED

SCANNED = ("context", "traits", "properties")
TECHNICAL_CONTEXT = frozenset(
    {"library", "app", "os", "campaign", "page", "screen", "network", "consent", "protocols",
     "userAgentData", "userAgent", "locale", "timezone"}
)  # fmt: skip
BLOCK, HASH = "block", "hash"
_encode = msgspec.json.encode


def sha256_hex(value: Any) -> Any:
    """The hashed form of a value (see the module's docstring)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: sha256_hex(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sha256_hex(v) for v in value]
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else _encode(value)
    return hashlib.sha256(data).hexdigest()


class PiiControl:
    """One source's or destination's rule: what to do with Red and with Yellow fields."""

    __slots__ = ("actions", "classifier")

    def __init__(self, classifier: Classifier, red: str | None, yellow: str | None) -> None:
        self.classifier = classifier
        self.actions = {k: v for k, v in (("red", red), ("yellow", yellow)) if v is not None}

    def apply(self, event: dict[str, Any]) -> tuple[int, int]:
        """Change `event` in place; returns (fields blocked, fields hashed)."""
        counts = [0, 0]
        for root in SCANNED:
            value = event.get(root)
            if isinstance(value, dict) and value:
                self._object(value, counts, TECHNICAL_CONTEXT if root == "context" else None)
        return counts[0], counts[1]

    def _classify(self, key: str | None, value: Any) -> str | None:
        classifier = self.classifier
        found = classifier.key(key) if key is not None else None
        level = found[1] if found is not None else None
        if level == GREEN:
            return GREEN
        if type(value) is str and level != "red":
            by_value = classifier.value(value)
            if by_value is not None:
                if by_value[1] == GREEN:
                    return level or GREEN
                if level is None or STRICTNESS[by_value[1]] > STRICTNESS[level]:
                    level = by_value[1]
        return level

    def _object(
        self, obj: dict[str, Any], counts: list[int], skip: frozenset[str] | None = None
    ) -> None:
        """One object's fields, in one pass (the hot loop: the common cases inline)."""
        actions = self.actions
        classifier = self.classifier
        cache = classifier.keys
        plain = classifier.plain_values
        blocked: list[str] = []
        for key, value in obj.items():
            if skip is not None and key in skip:
                continue
            cached = cache.get(key, False)
            found = classifier.key(key) if cached is False else cached
            assert found is not True  # the cache holds verdicts, never True
            kind = type(value)
            if found is None:
                if kind is str:
                    if value in plain:
                        continue
                    by_value = classifier.value(value)
                    if by_value is None or by_value[1] == GREEN:
                        continue
                    level = by_value[1]
                elif kind is dict:
                    self._object(value, counts)
                    continue
                elif kind is list:
                    self._list(value, counts)
                    continue
                else:
                    continue
            else:
                level = found[1]
                if level == GREEN:
                    continue
                if kind is str and level != RED:
                    by_value = classifier.value(value)
                    if by_value is not None and by_value[1] == RED:
                        level = RED
            action = actions.get(level)
            if action == BLOCK:
                blocked.append(key)
            elif action == HASH:
                obj[key] = sha256_hex(value)  # a value replaced, no key added: safe mid-loop
                counts[1] += 1
            elif kind is dict:
                self._object(value, counts)
            elif kind is list:
                self._list(value, counts)
        for key in blocked:
            del obj[key]
        counts[0] += len(blocked)

    def _list(self, items: list[Any], counts: list[int]) -> None:
        actions = self.actions
        keep: list[Any] = []
        for item in items:
            if isinstance(item, dict):
                self._object(item, counts)
            elif isinstance(item, list):
                self._list(item, counts)
            elif type(item) is str:
                level = self._classify(None, item)
                action = actions.get(level) if level is not None and level != GREEN else None
                if action == BLOCK:
                    counts[0] += 1
                    continue
                if action == HASH:
                    counts[1] += 1
                    item = sha256_hex(item)
            keep.append(item)
        if len(keep) != len(items):
            items[:] = keep
        else:
            for i, item in enumerate(keep):
                items[i] = item
